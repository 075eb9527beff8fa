"""Model instances from hand-written SQL, for the hottest reads (the home timeline and its hydration).

Compiling a queryset costs more than running the query it becomes, so the reads that every timeline
page makes are written as SQL once and turned back into model instances here, with the same value
conversions the ORM applies (SQLite datetimes and booleans, JSON fields), so the instances are exactly
what the ORM would have built.

Only the models' own quoted table and column names are put into these statements; every value is a
parameter (hence the S608 waivers on them).
"""

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models
from django.db.models import signals
from django.db.models.base import ModelState

Converter = Callable[[Any, Any, Any], Any]


class ModelColumns:
    """The concrete columns of `model` under a table alias, and how to turn their values into an instance."""

    def __init__(self, model: type[models.Model], alias: str) -> None:
        self.model = model
        fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in fields]
        quote = connection.ops.quote_name
        self.sql = ", ".join(f"{alias}.{quote(str(field.column))}" for field in fields)
        # The same columns, with SQLite's dates and times left as the text they are stored as (an
        # expression has no declared type, so the driver's converter does not parse it): `build` parses
        # them as it would, and rows compared as versions (see `post_rows`) are read without parsing.
        self.sql_text_times = ", ".join(
            f"+{alias}.{quote(str(field.column))}"
            if connection.vendor == "sqlite" and isinstance(field, models.DateField)
            else f"{alias}.{quote(str(field.column))}"
            for field in fields
        )
        self.width = len(fields)
        # Model.__init__ only sorts the values into attributes and sends pre_init/post_init; with no
        # receivers for this model, filling the instance's __dict__ directly is the same, several times faster.
        self._direct = not (signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model))
        self._converters: list[tuple[int, list[Converter], Any]] = []
        for index, field in enumerate(fields):
            column = field.get_col(alias)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if found:
                self._converters.append((index, found, column))

    def build(self, row: Sequence[Any], start: int = 0) -> Any:
        """The instance held in `row[start : start + width]`."""
        values = list(row[start : start + self.width])
        for index, converters, column in self._converters:
            value = values[index]
            for convert in converters:
                value = convert(value, column, connection)
            values[index] = value
        if not self._direct:
            return self.model.from_db(connection.alias, self.attnames, values)
        instance = self.model.__new__(self.model)
        state = ModelState()
        state.adding = False
        state.db = connection.alias
        instance.__dict__.update(zip(self.attnames, values, strict=True))
        instance.__dict__["_state"] = state
        return instance


def convert_value(field: models.Field, value: Any) -> Any:
    """One value of `field` read by hand-written SQL, converted as the ORM would."""
    column = field.get_col(field.model._meta.db_table)
    for convert in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
        value = convert(value, column, connection)
    return value


def placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def ids_in(column_sql: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """`column IN ids` and its parameters: one array on PostgreSQL, so the statement's text is the same
    for any number of ids (and can be prepared once); a list of placeholders elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column_sql} = ANY(%s)", [list(ids)]
    return f"{column_sql} IN ({placeholders(len(ids))})", list(ids)


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)
