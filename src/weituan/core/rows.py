"""Whole model rows read by hand-written SQL, for hot paths where compiling a queryset costs more than
running it (the bearer-token lookup, the checkout's deal read), and `fetch_rows`, which prepares such
statements once per PostgreSQL connection."""

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


def fetch_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a statement (a read, or a write returning rows) and return its rows. On PostgreSQL the
    statement is prepared once per connection: planning the hydration's joins, or a post's write, cost
    more than running them. Queries are logged (and counted by tests) as any other."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.ensure_connection()
    raw_connection = connection.connection
    if raw_connection.prepare_threshold is None:
        # Django turns preparing off for connection poolers; statements asked for explicitly (these
        # reads) are prepared, anything else still never is.
        raw_connection.prepare_threshold = 2**31 - 1
    raw = _PreparedCursor(raw_connection)
    with connection._prepare_cursor(raw) as cursor:  # type: ignore[attr-defined]
        cursor.execute(sql, params)
        return cursor.fetchall()


def _prepared_cursor_class() -> type:
    import psycopg

    class PreparedCursor(psycopg.Cursor):  # type: ignore[type-arg]
        """Server-side binding, every statement prepared (Django's own cursors bind on the client)."""

        def execute(
            self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
        ) -> Any:
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


class _LazyPreparedCursor:
    cls: type | None = None

    def __call__(self, raw_connection: Any) -> Any:
        if self.cls is None:
            self.cls = _prepared_cursor_class()
        return self.cls(raw_connection)


_PreparedCursor = _LazyPreparedCursor()
