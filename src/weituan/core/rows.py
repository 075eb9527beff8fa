"""Whole model rows read by hand-written SQL, for hot paths where compiling a queryset costs more than
running it (the bearer-token lookup, the checkout's deal read), and `fetch_rows`, which prepares such
statements once per PostgreSQL connection; and statements prepared by name for multi-statement queries
(`statement_names`)."""

import itertools
import re
import weakref
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Field, Model
from psycopg.adapt import Transformer


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


class StatementsLost(Exception):
    """A statement named a prepared statement the server no longer holds on its connection. Nothing after
    it ran and a transaction around it is aborted; the connection's names are forgotten, so running the
    same work again prepares them anew."""


# Statements prepared with PREPARE on each PostgreSQL connection, for running by name inside a
# multi-statement query (`execute_of`): statement text -> its name. Such a statement outlives the
# transaction it was made in, rolled back or not; but psycopg deallocates every prepared statement of a
# connection when a transaction on it rolls back while psycopg holds prepared statements of its own (as
# `fetch_rows` makes it hold), so the owner of a transaction that failed forgets its names
# (`statements_forget`), and a name found missing all the same raises `StatementsLost`.
_prepared: "weakref.WeakKeyDictionary[Any, dict[str, str]]" = weakref.WeakKeyDictionary()
_prepared_count = itertools.count()
# A statement whose text is made per call (n accounts, say) takes a name per shape; past this many on
# one connection, further ones are sent as they are.
PREPARED_MOST = 200
_NO_SUCH_STATEMENT = "26000"
_PLACEHOLDER_TEXT = re.compile(r"%%|%s")
_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "int8"),
    (float, "float8"),
    (str, "text"),
    (datetime, "timestamptz"),
    (date, "date"),
    (UUID, "uuid"),
    (Decimal, "numeric"),
)


def statement_names(raw: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[str | None]:
    """The names the `statements` (`%s` placeholders, and this call's values) are prepared under on the
    PostgreSQL connection `raw`, preparing those that are not yet in one round trip; None for a
    statement past `PREPARED_MOST`. The first values a statement is prepared with give its parameters'
    types where Python's type says it (an integer is int8, a list an array of its items' type); the
    server infers the others (a string's, a NULL's) from the statement."""
    names = _prepared.get(raw)
    if names is None:
        names = _prepared[raw] = {}
    found: list[str | None] = []
    preparing: dict[str, str] = {}
    commands: list[str] = []
    for sql, params in statements:
        name = names.get(sql) or preparing.get(sql)
        if name is None and len(names) + len(preparing) < PREPARED_MOST:
            server_sql = _numbered(sql, len(params))
            name = preparing[sql] = f"weituan_{next(_prepared_count)}"
            types = f" ({', '.join(_pg_type(value) for value in params)})" if params else ""
            commands.append(f"PREPARE {name}{types} AS {server_sql}")
        found.append(name)
    if commands:
        with raw.cursor() as cursor:  # not one of the caller's statements, nor counted as one
            cursor.execute("; ".join(commands).encode())
        names.update(preparing)
    return found


def _numbered(sql: str, count: int) -> str:
    """`sql` with its `count` `%s` placeholders as $1, $2, ... and `%%` as `%`."""
    numbers = iter(range(1, count + 1))
    numbered = _PLACEHOLDER_TEXT.sub(lambda m: "%" if m.group() == "%%" else f"${next(numbers)}", sql)
    if next(numbers, None) is not None:
        raise ValueError(f"the statement has fewer placeholders than its {count} values")
    return numbered


def statements_forget(raw: Any) -> None:
    """Forget the names prepared on connection `raw`: the next use prepares its statements anew."""
    _prepared.pop(raw, None)


def execute_of(name: str, count: int) -> str:
    """The statement that runs prepared statement `name` with `count` `%s` values."""
    return f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"


def statements_lost_check(raw: Any, exc: Exception) -> None:
    """Raise `StatementsLost` (forgetting `raw`'s names) when `exc` says a prepared statement is gone."""
    if getattr(exc, "sqlstate", None) == _NO_SUCH_STATEMENT:
        _prepared.pop(raw, None)
        raise StatementsLost(str(exc)) from exc


def _pg_type(value: Any) -> str:
    if isinstance(value, list | tuple):
        item = next((item for item in value if item is not None), None)
        inner = _pg_type(item) if item is not None else "unknown"
        return "unknown" if inner == "unknown" else inner + "[]"
    for kind, name in _TYPES:
        if isinstance(value, kind):
            return name
    return "unknown"


# Query texts already checked for placeholders: the same few texts recur on every request.
_templates: dict[str, bytes] = {}
_TEMPLATES_KEPT = 512
_PLACEHOLDER = re.compile(rb"%%|%s")


def sql_bound(raw: Any, query: str, values: Sequence[Any]) -> bytes:
    """`query` with `values` merged in as SQL literals, as psycopg's client-side binding merges them
    (the same adapters, `%%` for a literal percent sign), without splitting the text again each time."""
    template = _templates.get(query)
    if template is None:
        template = query.encode(raw.info.encoding)
        if b"%" in _PLACEHOLDER.sub(b"", template):
            raise ValueError("a statement here may only use %s placeholders")
        if len(_templates) >= _TEMPLATES_KEPT:
            _templates.clear()
        _templates[query] = template
    literal = Transformer(raw).as_literal
    return template % tuple(b"NULL" if value is None else literal(value) for value in values)
