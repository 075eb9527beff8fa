"""Whole model rows read by hand-written SQL, for hot paths where compiling a queryset costs more than
running it (the bearer-token lookup, the checkout's deal read)."""

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model


class RowReader[M: Model]:
    """Reads whole rows of `model` (every concrete column, primary key first) from hand-written SQL
    and makes instances of them, converting each column as the ORM does (SQLite's datetimes and
    booleans, say), without compiling a queryset each time.

    `columns(alias)` is the select list to put in the SQL; `instance(values)` takes that many values.
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model
        fields: list[Field[Any, Any]] = list(model._meta.concrete_fields)
        fields.sort(key=lambda field: not field.primary_key)
        self.fields = fields
        self.attnames = [field.attname for field in fields]
        self._converters: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def columns(self, alias: str) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{alias}.{quote(str(field.column))}" for field in self.fields)

    def instance(self, values: Sequence[Any]) -> M | None:
        """The instance of these column values; None when the primary key is NULL (an outer join's miss)."""
        if values[0] is None:
            return None
        row = list(values)
        for index, convert in self._converters_now():
            row[index] = convert(row[index])
        return self.model.from_db(connection.alias, self.attnames, row)

    def _converters_now(self) -> list[tuple[int, Callable[[Any], Any]]]:
        found = self._converters.get(connection.vendor)
        if found is None:
            found = self._converters[connection.vendor] = []
            for index, field in enumerate(self.fields):
                expression = field.get_col(self.model._meta.db_table)
                chain = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
                if chain:
                    found.append((index, _chained(chain, expression)))
        return found


def _chained(chain: list[Callable[..., Any]], expression: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        for converter in chain:
            value = converter(value, expression, connection)
        return value

    return convert
