"""Hand-written SQL for the checkout path, where building the ORM's queries costs more than running them."""

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Field, Model

from weituan.core.rows import (
    execute_of,
    rows_of,
    sql_bound_quick,
    statement_names,
    statements_lost_check,
    statements_unchecked,
)
from weituan.core.tasks import ReadAfterCommit, reads_after_commit

Prepare = Callable[[Model], Any]

# Field classes whose value of a plain Python type reaches the database as its backend's adapter makes
# it, with nothing else on the way (no default to fill, no conversion of the value itself): the
# integers (keys too), text and plain times. Exact classes only: a subclass may prepare its own way.
_INTEGER_FIELDS = (
    models.IntegerField, models.BigIntegerField, models.SmallIntegerField, models.PositiveIntegerField,
    models.PositiveBigIntegerField, models.PositiveSmallIntegerField,
)  # fmt: skip
_AUTO_FIELDS = (models.AutoField, models.BigAutoField, models.SmallAutoField)  # keys: checked, not adapted
_TEXT_FIELDS = (models.CharField, models.TextField)
# Per database alias (whose operations adapt values alike in every thread), model and fields.
_preparers: dict[tuple[str, type[Model], tuple[str, ...]], list[Prepare]] = {}


def values_preparers(model: type[Model], fields: Sequence[Field[Any, Any]]) -> list[Prepare]:
    """For each field, the call that makes an unsaved instance's value for an INSERT: the value
    `field.get_db_prep_save(field.pre_save(instance, True), connection)` gives, reached directly for a
    plain value of a plain field (an int for an integer or key, a str for text, None where the
    column takes NULL, an aware datetime for a time without auto_now), and by that same chain for
    anything else."""
    key = (connection.alias, model, tuple(field.attname for field in fields))
    found = _preparers.get(key)
    if found is None:
        found = _preparers[key] = [_preparer(field) for field in fields]
    return found


def _preparer(field: Field[Any, Any]) -> Prepare:
    ops = connection.ops
    attname = field.attname
    kind = type(field)
    target = field.target_field if isinstance(field, models.ForeignKey) else None

    def ordinary(instance: Model) -> Any:
        return field.get_db_prep_save(field.pre_save(instance, True), connection)

    if target is not None and kind is models.ForeignKey and type(target) in _INTEGER_FIELDS + _AUTO_FIELDS:
        kind, internal = type(target), target.get_internal_type()
    else:
        internal = field.get_internal_type()
    if kind in _INTEGER_FIELDS or kind in _AUTO_FIELDS:
        auto = kind in _AUTO_FIELDS

        def integer(instance: Model) -> Any:
            value = getattr(instance, attname)
            if value is None:
                return None
            if type(value) is int:
                return (
                    ops.validate_autopk_value(value)
                    if auto
                    else ops.adapt_integerfield_value(value, internal)
                )
            return ordinary(instance)

        return integer
    if kind in _TEXT_FIELDS:

        def text(instance: Model) -> Any:
            value = getattr(instance, attname)
            if value is None or type(value) is str:
                return value
            return ordinary(instance)

        return text
    if kind is models.DateTimeField and not (field.auto_now or field.auto_now_add):  # type: ignore[attr-defined]

        def moment(instance: Model) -> Any:
            value = getattr(instance, attname)
            if value is None:
                return None
            if type(value) is datetime and value.utcoffset() is not None:
                return ops.adapt_datetimefield_value(value)
            return ordinary(instance)

        return moment
    return ordinary


_inserts: dict[tuple[str, type[Model], int], tuple[str, list[Field[Any, Any]]]] = {}


def rows_insert(instances: Sequence[Model]) -> None:
    """INSERT unsaved instances of one model in one statement and set their ids, as `bulk_create` does.

    Values go through each field's own `pre_save` and `get_db_prep_save`, so defaults, `auto_now_add`
    and the database's date and JSON formats are what the ORM would have written. Rows come back in
    the order they were sent (both SQLite and PostgreSQL return VALUES rows in order, which `bulk_create`
    relies on as well).
    """
    if not instances:
        return
    model = type(instances[0])
    shape = (connection.vendor, model, len(instances))
    statement = _inserts.get(shape)
    if statement is None:
        meta = model._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
        statement = _inserts[shape] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
            f" VALUES {', '.join([row_marks] * len(instances))} RETURNING {quote(str(meta.pk.column))}",  # type: ignore[union-attr]
            fields,
        )
    sql, fields = statement
    prepares = values_preparers(model, fields)
    params: list[Any] = []
    for instance in instances:
        params += [prepare(instance) for prepare in prepares]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for instance, id_ in zip(instances, ids, strict=True):
        instance.pk = id_
        instance._state.adding = False
        instance._state.db = connection.alias


_known_inserts: dict[tuple[str, type[Model]], tuple[str, list[Field[Any, Any]]]] = {}


def row_insert_known(instance: Model, *, batch: "StatementBatch | None" = None) -> None:
    """INSERT one unsaved instance whose primary key is already set (drawn from its sequence), reading
    nothing back, so the statement can go out in a `StatementBatch` with the ones after it (queued in
    `batch` directly when given, rather than through a cursor). Values are made as in `rows_insert`."""
    model = type(instance)
    db = connections[DEFAULT_DB_ALIAS]
    shape = (db.vendor, model)
    statement = _known_inserts.get(shape)
    if statement is None:
        meta = model._meta
        fields = list(meta.concrete_fields)
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        statement = _known_inserts[shape] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})",  # noqa: S608
            fields,
        )
    sql, fields = statement
    if instance.pk is None:
        raise ValueError(f"{model.__name__} has no primary key yet")
    params = [prepare(instance) for prepare in values_preparers(model, fields)]
    if batch is not None:
        batch.add(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    instance._state.adding = False
    instance._state.db = db.alias


# The first statement of a batch whose prepared statements are to run on their generic plans: planned
# once per connection, not again on each run (PostgreSQL plans a statement anew, with its values, on
# its first runs, and for good when its generic plan's estimate is costlier; the checkout's statements
# of sets and CTEs cost more to plan than to run). Only for the transaction it is sent in.
GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"

# SQLSTATE of `weituan_refuse(reason)` (migration deals 0003): a refusal decided inside a batch.
REFUSAL_SQLSTATE = "WR001"


class BatchRefused(Exception):
    """A statement of a batch called `weituan_refuse(reason)`: the statements after it did not run and
    the transaction is aborted (the caller's atomic block rolls it back)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sent:
    """What one statement of a batch answered: its rows (if it returns any) and its row count."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount


class StatementBatch:
    """Statements sent together and answered together: on PostgreSQL as one simple query, so a
    handful of statements cost one round trip (and one system call each way) instead of one each.

    `add` queues a statement and returns a call that gives its answer once the batch was sent. Inside
    `with batch:` a statement any other code executes on the connection is queued too (code that only
    writes and reads nothing back, such as the tracking outbox's insert). `send()` runs them in order;
    the first failing statement raises (as from `cursor.execute`, or `BatchRefused` when it called
    `weituan_refuse`) and the ones after it do not run.
    PostgreSQL still runs each statement with its own snapshot (READ COMMITTED), so a read after a
    lock sees what was committed before the lock was granted. Elsewhere (SQLite) the statements are
    executed one after another by `send()`.

    A `prepared` batch on PostgreSQL runs each statement with values by the name it was prepared under
    on the connection (prepared at its first use there, all in one round trip). A rollback on the
    connection can take those away (see `core.rows.statement_names`): after a prepared batch fails,
    which are left is asked of the server before the next one, and a batch that finds one gone all the
    same raises `StatementsLost`, so its caller must be ready to run its transaction again.
    """

    def __init__(self, *, prepared: bool = False) -> None:
        self._prepared = prepared
        self._queued: list[tuple[str, Sequence[Any] | None]] = []
        self._captured: list[bool] = []  # queued from another cursor's execute
        self._answers: list[Sent] | None = None
        self._capture: Any = None
        self.committed = False  # the batch ended with its own COMMIT
        self.locked: set[str] = set()  # identities of the ledger accounts a statement here locks

    def add(self, sql: str, params: Sequence[Any] | None = None) -> Callable[[], Sent]:
        if self._answers is not None:
            raise RuntimeError("this batch was already sent")
        index = len(self._queued)
        self._queued.append((sql, params))
        self._captured.append(False)

        def answer() -> Sent:
            if self._answers is None:
                raise RuntimeError("the batch has not been sent")
            return self._answers[index]

        return answer

    def __enter__(self) -> "StatementBatch":
        def queue(execute: Any, sql: str, params: Any, many: bool, context: Any) -> None:
            if many:
                raise RuntimeError("executemany cannot join a statement batch")
            self.add(sql, params)
            self._captured[-1] = True

        self._capture = connection.execute_wrapper(queue)
        self._capture.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        capture, self._capture = self._capture, None
        capture.__exit__(*exc)

    def send(self, *, commit: bool = False) -> None:
        """Run the statements. With `commit`, on PostgreSQL, when the caller's `atomic` block opened the
        transaction (the outermost block, autocommit on before it), the batch ends with its COMMIT
        (`committed` says whether it did): rows the last statements lock are held until the commit
        inside the server, not for another round trip to this process and back; what the
        transaction's on-commit hooks would read after the commit is read after it in that same round
        trip (`core.tasks.reads_after_commit`). From then on the work is done: what the caller's
        block does after this runs in a transaction of its own, its on-commit hooks run as usual when
        the block ends, and an error after it is as a crash after the commit (the caller must not
        undo what it did outside the database)."""
        if self._capture is not None:
            raise RuntimeError("send the batch after its `with` block")
        # The thread's connection looked up once (each attribute read through the `connection` proxy
        # is a context-local lookup of its own).
        db = connections[DEFAULT_DB_ALIAS]
        if db.vendor != "postgresql" or len(self._queued) < 2:
            answers: list[Sent] = []
            with db.cursor() as cursor:
                for sql, params in self._queued:
                    cursor.execute(sql, params)
                    answers.append(Sent(rows_of(cursor), cursor.rowcount))
            self._answers = answers
            return
        # Only a transaction the caller's own `atomic` block opened (not a savepoint, and not one begun
        # with autocommit off) is the batch's to commit.
        commit_here = commit and len(db.atomic_blocks) == 1 and db.commit_on_exit and not db.savepoint_ids
        self._answers = self._send_as_one(db, commit=commit_here)

    def _send_as_one(self, db: Any, *, commit: bool) -> list[Sent]:
        from psycopg import ClientCursor, Error

        db.validate_no_broken_transaction()
        db.ensure_connection()
        raw = db.connection
        # One query text, with the values quoted client-side once (as Django's cursors bind them anyway);
        # a statement sent without values has its "%" kept as it is. In a `prepared` batch a statement
        # with values runs as EXECUTE of a statement prepared once per connection, so the server neither
        # parses nor plans it again each time.
        if self._prepared:
            named = [(sql, params) for sql, params in self._queued if params]
            by_sql = dict(zip((sql for sql, _ in named), statement_names(raw, named), strict=True))
        else:
            by_sql = {}
        pieces: list[str] = []
        values: list[Any] = []
        for sql, params in self._queued:
            if params is None:
                pieces.append(sql.replace("%", "%%"))
            elif not params:
                pieces.append(sql)
            else:
                name = by_sql.get(sql)
                pieces.append(sql if name is None else execute_of(name, len(params)))
                values += params
        after: list[ReadAfterCommit] = []
        if commit:
            pieces.append("COMMIT")
            after = reads_after_commit(db)
            for read in after:
                pieces.append(read.sql)
                values += read.params
        # A batch that is its transaction's first and last work opens it too (psycopg would send the
        # BEGIN on a round trip of its own before it); not once statements were prepared in it.
        begin = commit and _begins_plainly(raw)
        if begin:
            pieces.insert(0, "BEGIN")
        text = sql_bound_quick(raw, "; ".join(pieces), values)
        answers: list[Sent] = []
        started = time.monotonic()
        with db.wrap_database_errors, raw.cursor() as cursor:
            try:
                if begin:
                    _execute_beginning(raw, cursor, text)
                    cursor.nextset()  # past the BEGIN's answer
                else:
                    cursor.execute(text)
            except Error as exc:
                if self._prepared:
                    # The transaction rolls back now, and with it psycopg may deallocate the connection's
                    # prepared statements (when it holds its own, as after `fetch_rows`).
                    statements_unchecked(raw)
                if exc.sqlstate == REFUSAL_SQLSTATE:
                    raise BatchRefused(exc.diag.message_primary or "") from None
                statements_lost_check(raw, exc)
                raise
            self.committed = commit
            for _ in self._queued:
                answers.append(Sent(rows_of(cursor), cursor.rowcount))
                cursor.nextset()
            for read in after:  # past the COMMIT's answer
                cursor.nextset()
                read.take(list(cursor.fetchall()))
        if db.queries_logged:
            # Counted as Django counts statements (a statement queued from another cursor was logged
            # by that cursor already).
            took = f"{(time.monotonic() - started) / len(self._queued):.3f}"
            compose = ClientCursor(raw)
            for (sql, params), captured in zip(self._queued, self._captured, strict=True):
                if not captured:
                    db.queries_log.append({"sql": compose.mogrify(sql, params), "time": took})
            for read in after:
                db.queries_log.append({"sql": compose.mogrify(read.sql, read.params), "time": took})
        return answers


def _begins_plainly(raw: Any) -> bool:
    """Whether no statement ran yet in the transaction Django opened on `raw` (psycopg has not sent
    its BEGIN), and that BEGIN would be a plain one (no isolation level or access mode of its own)."""
    from psycopg.pq import TransactionStatus

    return (
        raw.pgconn.transaction_status == TransactionStatus.IDLE
        and not raw.autocommit
        and raw.isolation_level is None
        and raw.read_only is None
        and raw.deferrable is None
    )


def _execute_beginning(raw: Any, cursor: Any, text: bytes) -> None:
    """Run `text` (BEGIN; ...; COMMIT) as one query: psycopg is told autocommit for the call, so it
    sends no BEGIN of its own first. Either way the connection is left as psycopg and Django expect
    it: autocommit off again, outside a transaction (the failed one rolled back, as Django's block
    would roll it back after the error)."""
    from psycopg.pq import TransactionStatus

    raw.autocommit = True
    try:
        cursor.execute(text)
    finally:
        try:
            if raw.pgconn.transaction_status != TransactionStatus.IDLE:
                raw.rollback()
        except Exception:  # noqa: S110 - a broken connection: the error being raised says so
            pass
        finally:
            try:
                raw.autocommit = False
            except Exception:
                # A connection that cannot even take this is checked (and dropped) before its next use.
                connection.errors_occurred = True
