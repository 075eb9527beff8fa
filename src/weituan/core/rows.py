"""Whole model rows read by hand-written SQL, for hot paths where compiling a queryset costs more than
running it (the bearer-token lookup, the checkout's deal read), and `fetch_rows`, which prepares such
statements once per PostgreSQL connection; and statements prepared by name for multi-statement queries
(`statement_names`)."""

import hashlib
import re
import weakref
from collections.abc import Callable, Sequence
from copy import deepcopy
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Field, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from psycopg.adapt import Transformer
from psycopg.pq import ExecStatus


class RowReader[M: Model]:
    """Reads whole rows of `model` (every concrete column, primary key first) from hand-written SQL
    and makes instances of them, converting each column as the ORM does (SQLite's datetimes and
    booleans, say), without compiling a queryset each time.

    `columns(alias)` is the select list to put in the SQL; `instance(values)` takes that many values.
    """

    # Instances kept by the values of the row they were made of (per reader): a row read again as it
    # was (a caller's token and user, on every request they make) is copied from the instance made
    # before instead of made anew, which costs the model's __init__ and the columns' conversions.
    KEEP = 1024

    def __init__(self, model: type[M]) -> None:
        self.model = model
        fields: list[Field[Any, Any]] = list(model._meta.concrete_fields)
        fields.sort(key=lambda field: not field.primary_key)
        self.fields = fields
        self.attnames = [field.attname for field in fields]
        self._converters: dict[str, list[tuple[int, Callable[[Any], Any]]]] = {}
        self._made: dict[tuple[Any, ...], M] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def columns(self, alias: str) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{alias}.{quote(str(field.column))}" for field in self.fields)

    def instance(self, values: Sequence[Any]) -> M | None:
        """The instance of these column values; None when the primary key is NULL (an outer join's miss)."""
        if values[0] is None:
            return None
        alias = connection.alias
        key: tuple[Any, ...] | None = (alias, *values)
        try:
            kept = self._made.get(key)  # type: ignore[arg-type]
        except TypeError:  # a value that is not hashable (a JSON column's list, say): not kept
            kept, key = None, None
        if kept is not None:
            return _copy_of(kept)
        row = list(values)
        for index, convert in self._converters_now():
            row[index] = convert(row[index])
        made = self.model.from_db(alias, self.attnames, row)
        # A copy skips the model's __init__, so only a model nothing listens to the making of is kept.
        if key is not None and _plain(made) and not _init_heard(self.model):
            try:
                if len(self._made) >= self.KEEP:
                    self._made.pop(next(iter(self._made)), None)
            except (RuntimeError, StopIteration):  # another thread changed it meanwhile: no matter
                pass
            self._made[key] = _copy_of(made)  # kept apart from the one handed out, which may change
        return made

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


# Values an instance can share with its copies, as none of them changes in place; a JSON column's lists
# and objects are copied for each.
_IMMUTABLE = (int, float, str, bytes, bool, type(None), datetime, date, Decimal, UUID)
_JSON_CONTAINERS = (list, dict)


def _plain[M: Model](instance: M) -> bool:
    """Whether every field value of a freshly made `instance` is immutable or a JSON container."""
    return all(
        isinstance(value, _IMMUTABLE + _JSON_CONTAINERS)
        for name, value in instance.__dict__.items()
        if name != "_state"
    )


def _init_heard(model: type[Model]) -> bool:
    return pre_init.has_listeners(model) or post_init.has_listeners(model)


def _copy_of[M: Model](instance: M) -> M:
    """A new instance with the field values of `instance` (a freshly made one, or a copy of one), as
    loaded from its database: what `from_db` would make of the same row."""
    copy = instance.__class__.__new__(instance.__class__)
    values = copy.__dict__
    values.update(instance.__dict__)
    for name, value in values.items():
        if isinstance(value, _JSON_CONTAINERS):
            values[name] = deepcopy(value)
    state = ModelState()
    state.adding, state.db = False, instance._state.db
    copy._state = state
    return copy


def _chained(chain: list[Callable[..., Any]], expression: Any) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        for converter in chain:
            value = converter(value, expression, connection)
        return value

    return convert


_vendors: dict[str, str] = {}


def db_vendor(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The database's vendor ("sqlite", "postgresql"), read once per process: asked through the
    `connection` proxy, it is a context-local lookup each time, and hot reads ask it several times."""
    found = _vendors.get(alias)
    if found is None:
        found = _vendors[alias] = connections[alias].vendor
    return found


_naive_utc: dict[tuple[str, bool, str], bool] = {}


def db_datetimes(values: Sequence[datetime], alias: str = DEFAULT_DB_ALIAS) -> list[Any]:
    """Aware datetimes as statement parameters, as the backend adapts them
    (`ops.adapt_datetimefield_value`). SQLite keeps them as text in the connection's time zone; when
    that is UTC (Django's default with USE_TZ) the text is written here directly, a few times faster
    than the backend's per-value checks on a statement a hot read sends on every request."""
    key = (alias, settings.USE_TZ, str(settings.DATABASES[alias].get("TIME_ZONE")))
    naive = _naive_utc.get(key)
    if naive is None:
        db = connections[alias]
        naive = _naive_utc[key] = (
            db.vendor == "sqlite" and settings.USE_TZ and str(db.timezone) in ("UTC", "Etc/UTC")
        )
    if naive:
        return [
            (value if value.tzinfo is UTC else value.astimezone(UTC)).replace(tzinfo=None).isoformat(" ")
            for value in values
        ]
    adapt = connections[alias].ops.adapt_datetimefield_value
    return [adapt(value) for value in values]


def fetch_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Run a statement (a read, or a write: one returning no rows gives none) and return its rows. On
    PostgreSQL the statement is prepared once per connection: planning the hydration's joins, or a
    post's write, cost more than running them. Queries are logged (and counted by tests) as any other."""
    # The thread's connection looked up once: each attribute read through the `connection` proxy is
    # a context-local lookup of its own, several microseconds on a statement of a hundred.
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        if db.vendor != "sqlite" or db.queries_logged or db.execute_wrappers:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return rows_of(cursor)
        # As Django's SQLite cursor runs it (placeholders as `?`), on a cursor of the driver's kept
        # per connection, with the statement's `?` form made once.
        db.ensure_connection()
        kept = db.__dict__.get("_weituan_cursor")
        if kept is None or kept[0] is not db.connection:
            kept = db.__dict__["_weituan_cursor"] = (db.connection, db.connection.cursor())
        db.validate_no_broken_transaction()
        with db.wrap_database_errors:
            return rows_of(kept[1].execute(_qmark(sql), params))
    db.ensure_connection()
    raw_connection = db.connection
    if raw_connection.prepare_threshold is None:
        # Django turns preparing off for connection poolers; statements asked for explicitly (these
        # reads) are prepared, anything else still never is.
        raw_connection.prepare_threshold = 2**31 - 1
    if db.queries_logged or db.execute_wrappers:
        with db._prepare_cursor(_PreparedCursor(raw_connection)) as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql, params)
            return rows_of(cursor)
    # What Django's cursor wrapper does around a statement when nothing logs or wraps it, on a cursor
    # kept per connection (making a cursor and its wrapper was a third of a short read's CPU).
    kept = db.__dict__.get("_weituan_cursor")
    if kept is None or kept[0] is not raw_connection:
        kept = db.__dict__["_weituan_cursor"] = (raw_connection, _PreparedCursor(raw_connection))
    raw = kept[1]
    db.validate_no_broken_transaction()
    with db.wrap_database_errors:
        raw.execute(sql, params)
        return rows_of(raw)


def rows_of(cursor: Any) -> list[tuple[Any, ...]]:
    """The rows of the statement `cursor` ran; none for a statement that returns no rows (which
    psycopg refuses to fetch from). On psycopg the result's status says which: its `description`
    makes an object per column each time it is read, dozens a checkout."""
    result = getattr(cursor, "pgresult", None)
    if result is not None:
        return cursor.fetchall() if result.status == ExecStatus.TUPLES_OK else []
    return cursor.fetchall() if cursor.description is not None else []


_QMARK: dict[str, str] = {}
_FORMAT = re.compile(r"(?<!%)%s")


def _qmark(sql: str) -> str:
    """`sql` with its `%s` placeholders as SQLite's `?`, as Django's SQLite cursor writes it."""
    found = _QMARK.get(sql)
    if found is None:
        if len(_QMARK) > 4096:
            _QMARK.clear()
        found = _QMARK[sql] = _FORMAT.sub("?", sql).replace("%%", "%")
    return found


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
    it ran and a transaction around it is aborted; the connection's names are checked against the
    server before their next use, so running the same work again prepares what is missing."""


class _Prepared:
    """The statements known to be prepared on one connection, by name; `checked` is False after a
    failure that may have taken some away (or left some half made), until the server is asked."""

    __slots__ = ("checked", "names")

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.checked = True


# Statements prepared with PREPARE on each PostgreSQL connection, for running by name inside a
# multi-statement query (`execute_of`). A statement's name is made from its text and its parameters'
# types, so the same statement always has the same name and a name is never left behind under another.
# Such a statement outlives the transaction it was made in, rolled back or not; but psycopg deallocates
# every prepared statement of a connection when a transaction on it rolls back while psycopg holds
# prepared statements of its own (as `fetch_rows` makes it hold). So after a failure the caller marks
# the connection's names unchecked (`statements_unchecked`), and the next use asks the server which
# exist; a name found missing all the same raises `StatementsLost`.
_prepared: "weakref.WeakKeyDictionary[Any, _Prepared]" = weakref.WeakKeyDictionary()
_names: dict[tuple[str, tuple[str, ...]], str] = {}
# A statement whose text is made per call (n accounts, say) takes a name per shape; past this many on
# one connection, further ones are sent as they are.
PREPARED_MOST = 200
_NO_SUCH_STATEMENT = "26000"
_PLACEHOLDER_TEXT = re.compile(r"%%|%s")
_TYPE_NAMES: dict[type, str] = {
    bool: "boolean",
    int: "int8",
    float: "float8",
    str: "text",
    datetime: "timestamptz",
    date: "date",
    UUID: "uuid",
    Decimal: "numeric",
    type(None): "unknown",
}


def statement_names(raw: Any, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[str | None]:
    """The names the `statements` (`%s` placeholders, and this call's values) are prepared under on the
    PostgreSQL connection `raw`, preparing those that are not yet, all in one round trip; None for a
    statement past `PREPARED_MOST`. The values' Python types give the parameters' types (an integer is
    int8, a list an array of its items' type; the same statement with values of other types is another
    prepared statement); the server infers those Python cannot tell (a NULL's, say) from the statement,
    so a statement whose NULL parameter it cannot place must not be run this way."""
    known = _prepared.get(raw)
    if known is None:
        known = _prepared[raw] = _Prepared()
    wanted: list[tuple[str, str, tuple[str, ...]]] = []
    for sql, params in statements:
        shape = (sql, tuple(map(_kind_of, params)))
        found_shape = _shapes.get(shape)
        if found_shape is None:
            found_shape = _shapes[shape] = _shape_named(sql, params)
        wanted.append((found_shape[0], sql, found_shape[1]))
    if known.checked and all(name in known.names for name, _, _ in wanted):
        return [name for name, _, _ in wanted]  # all prepared already: nothing to send
    with connection.wrap_database_errors, raw.cursor() as cursor:  # not the caller's own statements
        if not known.checked and known.names:
            cursor.execute(
                "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)", [list(known.names)]
            )
            known.names = {name for (name,) in cursor.fetchall()}
        known.checked = True
        commands: dict[str, str] = {}
        found: list[str | None] = []
        for name, sql, types in wanted:
            if name in known.names or name in commands:
                found.append(name)
            elif len(known.names) + len(commands) >= PREPARED_MOST:
                found.append(None)
            else:
                declared = f" ({', '.join(types)})" if types else ""
                commands[name] = f"PREPARE {name}{declared} AS {_numbered(sql, len(types))}"
                found.append(name)
        if commands:
            known.checked = False  # until the PREPAREs are through: one may fail part of the way
            cursor.execute("; ".join(commands.values()).encode())
            known.names.update(commands)
            known.checked = True
    return found


def _kind_of(value: Any) -> Any:
    """What decides a value's parameter type: its Python type; for a list or tuple, also its first
    item's that is not None (`_pg_type`)."""
    kind = type(value)
    if isinstance(value, list | tuple):
        return (kind, _kind_of(next((item for item in value if item is not None), None)))
    return kind


# Per statement text and its values' kinds (`_kind_of`): its name and parameter types.
_shapes: dict[tuple[str, tuple[type, ...]], tuple[str, tuple[str, ...]]] = {}


def _shape_named(sql: str, params: Sequence[Any]) -> tuple[str, tuple[str, ...]]:
    """The prepared statement name of `sql` with values of the types of `params`, and those types."""
    types = tuple(_pg_type(value) for value in params)
    name = _names.get((sql, types))
    if name is None:
        digest = hashlib.blake2b(f"{types}|{sql}".encode(), digest_size=10).hexdigest()
        name = _names[(sql, types)] = f"weituan_{digest}"
    return name, types


def _numbered(sql: str, count: int) -> str:
    """`sql` with its `count` `%s` placeholders as $1, $2, ... and `%%` as `%`."""
    numbers = iter(range(1, count + 1))
    numbered = _PLACEHOLDER_TEXT.sub(lambda m: "%" if m.group() == "%%" else f"${next(numbers)}", sql)
    if next(numbers, None) is not None:
        raise ValueError(f"the statement has fewer placeholders than its {count} values")
    return numbered


def statements_unchecked(raw: Any) -> None:
    """After a failure on connection `raw` (its transaction about to roll back, or rolled back): which
    of its statements are still prepared is asked of the server before their next use."""
    known = _prepared.get(raw)
    if known is not None:
        known.checked = False


def execute_of(name: str, count: int) -> str:
    """The statement that runs prepared statement `name` with `count` `%s` values."""
    return f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"


def statements_lost_check(raw: Any, exc: Exception) -> None:
    """Raise `StatementsLost` when `exc` says a prepared statement of `raw` is gone."""
    if getattr(exc, "sqlstate", None) == _NO_SUCH_STATEMENT:
        statements_unchecked(raw)
        raise StatementsLost(str(exc)) from exc


def _pg_type(value: Any) -> str:
    name = _TYPE_NAMES.get(type(value))
    if name is not None:
        return name
    if isinstance(value, list | tuple):
        item = next((item for item in value if item is not None), None)
        inner = _pg_type(item) if item is not None else "unknown"
        return "unknown" if inner == "unknown" else inner + "[]"
    for kind, kind_name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return kind_name
    return "unknown"


# Query texts already checked for placeholders: the same few texts recur on every request.
_templates: dict[str, bytes] = {}
_TEMPLATES_KEPT = 512
_PLACEHOLDER = re.compile(rb"%%|%s")


def _template_of(raw: Any, query: str) -> bytes:
    """`query` encoded for `%` merging, checked once and kept."""
    template = _templates.get(query)
    if template is None:
        template = query.encode(raw.info.encoding)
        if 37 in _PLACEHOLDER.sub(b"", template):  # a `%` other than the placeholders
            raise ValueError("a statement here may only use %s placeholders")
        if len(_templates) >= _TEMPLATES_KEPT:
            _templates.clear()
        _templates[query] = template
    return template


def sql_bound(raw: Any, query: str, values: Sequence[Any]) -> bytes:
    """`query` with `values` merged in as SQL literals, as psycopg's client-side binding merges them
    (the same adapters, `%%` for a literal percent sign), without splitting the text again each time."""
    template = _template_of(raw, query)
    literal = Transformer(raw).as_literal
    return template % tuple(b"NULL" if value is None else literal(value) for value in values)


# Per connection: whether its integers and strings are written as psycopg's default text dumpers write
# them (so `sql_bound_quick` may write them itself).
_plain_literals: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()
_LITERAL_SAMPLES: tuple[tuple[Any, bytes], ...] = (
    (7, b"7"),
    (-7, b" -7"),
    ("a b", b"'a b'"),
    (None, b"NULL"),
    (datetime(2000, 1, 2, 3, 4, 5, 6, tzinfo=UTC), b"'2000-01-02 03:04:05.000006+00:00'::timestamptz"),
)
_transformers: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def sql_bound_quick(raw: Any, query: str, values: Sequence[Any]) -> bytes:
    """`sql_bound(raw, query, values)`, the same bytes, with the commonest values (integers, strings
    without quotes or backslashes, None, UTC times) written here rather than through psycopg's
    adapters (whose transformer is kept per connection): a batch of statements binds dozens of them
    per request. Arrays of integers or texts are written here too, as literals the server reads as the
    same values (`_array_literal`; their type written as int8[] or text[])."""
    transformer = _transformers.get(raw)
    if transformer is None:
        transformer = _transformers[raw] = Transformer(raw)
    plain = _plain_literals.get(raw)
    if plain is None:
        sample = transformer.as_literal
        plain = _plain_literals[raw] = raw.info.encoding == "utf-8" and all(
            (b"NULL" if value is None else sample(value)) == expected for value, expected in _LITERAL_SAMPLES
        )
    if not plain:
        return sql_bound(raw, query, values)
    template = _template_of(raw, query)
    literal = transformer.as_literal
    parts: list[bytes] = []
    for value in values:
        kind = type(value)
        if value is None:
            parts.append(b"NULL")
        elif kind is str and "'" not in value and "\\" not in value and "\x00" not in value:
            parts.append(b"'" + value.encode() + b"'")
        elif kind is int or kind in _PLAIN_INTS:
            parts.append(b"%d" % value if value >= 0 else b" %d" % value)
        elif kind is datetime and value.tzinfo is UTC:
            parts.append(b"'" + str(value).encode() + b"'::timestamptz")
        elif kind is list:
            parts.append(_array_literal(value) or literal(value))
        else:
            parts.append(literal(value))
    return template % tuple(parts)


def _array_literal(values: list[Any]) -> bytes | None:
    """An array of integers (int8[]) or of texts (text[]), NULLs among them, as a literal written here
    (psycopg dumps an array item by item through its adapters, the most of a batch's binding when it
    names tens of rows); None for any other list (or one of NULLs alone, whose type psycopg decides),
    or a text with a backslash or a NUL."""
    kinds = {type(value) for value in values if value is not None}
    if kinds == {int}:
        items = ",".join("NULL" if value is None else str(value) for value in values)
        return b"'{" + items.encode() + b"}'::int8[]"
    if kinds != {str} or any("\\" in value or "\x00" in value for value in values if value is not None):
        return None
    texts = [
        "NULL" if value is None else '"' + value.replace('"', '\\"').replace("'", "''") + '"'
        for value in values
    ]
    return b"'{" + ",".join(texts).encode() + b"}'::text[]"


def _plain_int_types() -> tuple[type, ...]:
    from psycopg.types.numeric import Int2, Int4, Int8

    return (Int2, Int4, Int8)


_PLAIN_INTS = _plain_int_types()
