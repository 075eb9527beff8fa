"""Enqueueing background tasks once the surrounding transaction has committed, and again after a store outage."""

import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, router, transaction
from django.dispatch import receiver
from django.tasks import Task, TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend

from weituan.core.errors import STORE_OUTAGES, lost_connections_closed

logger = logging.getLogger(__name__)

# Path of a task without arguments -> (id of the last run of it this process enqueued, the
# time.monotonic() before which that run certainly has not started).
_last_enqueued: dict[str, tuple[str, float]] = {}


@receiver(setting_changed)
def _tasks_changed(*, setting: str, **kwargs: Any) -> None:
    """Runs enqueued on another task backend are not this one's to ask about."""
    if setting == "TASKS":
        _last_enqueued.clear()


# A run of a task without arguments is enqueued to start this long after the commit that asked for it
# (where the backend can defer). No worker starts a task before its time, so the commits of that
# window need not read the run's status: it will see what they wrote, and moves it all in one go.
GATHER = timedelta(milliseconds=200)
# Workers on other machines read their own clocks; the window is trusted only this long before it ends.
# (A worker whose clock runs further ahead may start the run while commits still ride along: their
# events then wait for the periodic move, delayed, not lost.)
CLOCK_MARGIN = timedelta(milliseconds=50)


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Enqueue `task` after commit, so a worker never sees ids of rows that were rolled back.

    A task without arguments works through whatever is pending when it runs (the outbox move), so one
    waiting run is enough: it is enqueued once per transaction, and not at all while the run this
    process enqueued last has not started yet (that run starts after this commit, so it sees its rows).
    Where the backend can defer, that run is enqueued to start `GATHER` after the commit, and during
    that window it is known not to have started without asking the database.

    The hook is robust: an enqueue that fails (the task queue's database connection lost right after
    the commit) is logged and the caller's committed change still answered as done, rather than as
    an error its client would retry, and the other hooks of the commit still run. The task is then
    missed as it would be by a process stopped right after the commit: the deal sweep and the periodic
    outbox move find their work owed; a timeline's upkeep or a password-reset mail is not done.
    """
    if args or kwargs:
        transaction.on_commit(partial(task.enqueue, *args, **kwargs), robust=True)
        return
    connection = transaction.get_connection()
    here = set(connection.savepoint_ids)
    for savepoints, callback, _robust in connection.run_on_commit:
        # A hook of this savepoint or an enclosing one cannot be rolled back without this work too.
        if (
            isinstance(callback, _EnqueueOnce)
            and callback.task is task
            and not callback.ran
            and set(savepoints) <= here
        ):
            return
    transaction.on_commit(_EnqueueOnce(task), robust=True)


class _EnqueueOnce:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.ran = False  # (hooks run by a test's capture stay in the transaction's list)
        # The run whose status a statement right after this transaction's COMMIT read (see
        # `reads_after_commit`), and whether it had not started then.
        self.read_after_commit: tuple[str, bool] | None = None

    def __call__(self) -> None:
        self.ran = True
        path = self.task.module_path
        read = self.read_after_commit
        if read is not None and read[1]:
            return  # a run had not started after the commit: it will see this transaction's rows
        waiting = _last_enqueued.get(path)
        if waiting is not None:
            result_id, not_before = waiting
            if time.monotonic() < not_before:
                return
            if (read is None or read[0] != result_id) and _not_started(self.task, result_id):
                return
        if self.task.run_after is None and self.task.get_backend().supports_defer:
            result = self.task.using(run_after=timezone.now() + GATHER).enqueue()
            _last_enqueued[path] = (result.id, time.monotonic() + (GATHER - CLOCK_MARGIN).total_seconds())
        else:  # run as soon as a worker can, or at the time the task already carries: ask each time
            _last_enqueued[path] = (self.task.enqueue().id, 0.0)


class ReadAfterCommit:
    """A statement to run right after a transaction's COMMIT, in the same round trip (`sql`, with
    `params` as `%s` values), and the call that takes the rows it returned."""

    __slots__ = ("params", "sql", "take")

    def __init__(
        self, sql: str, params: Sequence[Any], take: Callable[[list[tuple[Any, ...]]], None]
    ) -> None:
        self.sql, self.params, self.take = sql, params, take


def reads_after_commit(connection: Any) -> list[ReadAfterCommit]:
    """What the on-commit hooks of `connection`'s transaction would read once it has committed, for a
    caller that sends the COMMIT itself together with other statements: the status of the run an
    `enqueue_on_commit` hook would otherwise ask about after the commit (its window being over), on
    the connection the run is kept on. Read in the COMMIT's round trip, after it, the answer says
    the same as the hook's own read would (a run not started after the commit will see what it
    wrote), and the hook makes no read of its own. Each statement can only fail as the commit's
    round trip itself can (the table the runs are kept in exists: the enqueueing wrote it)."""
    reads: list[ReadAfterCommit] = []
    for _savepoints, callback, _robust in connection.run_on_commit:
        if not isinstance(callback, _EnqueueOnce) or callback.ran or callback.read_after_commit is not None:
            continue
        waiting = _last_enqueued.get(callback.task.module_path)
        if waiting is None or time.monotonic() < waiting[1]:
            continue  # nothing to ask about, or no need (the window may still end before the hook runs)
        if _runs_kept_on(callback.task, connection):
            sql, params = _status_statement(waiting[0], connection)
            reads.append(ReadAfterCommit(sql, params, _status_taker(callback, waiting[0])))
    return reads


def _status_taker(hook: _EnqueueOnce, result_id: str) -> Callable[[list[tuple[Any, ...]]], None]:
    def take(rows: list[tuple[Any, ...]]) -> None:
        hook.read_after_commit = (result_id, _ready(rows))

    return take


def _runs_kept_on(task: Task, connection: Any) -> bool:
    """Whether the runs of `task` are rows of the database `connection` is on."""
    if not isinstance(task.get_backend(), DatabaseBackend):
        return False
    from django_tasks_db.models import DBTaskResult

    return bool(router.db_for_read(DBTaskResult) == connection.alias)


def _status_statement(result_id: str, connection: Any) -> tuple[str, list[Any]]:
    """The read of a database backend run's status alone (an indexed read by key) on `connection`."""
    from django_tasks_db.models import DBTaskResult

    table = connection.ops.quote_name(DBTaskResult._meta.db_table)
    key = DBTaskResult._meta.pk.get_db_prep_value(result_id, connection)  # type: ignore[union-attr]
    return f"SELECT status FROM {table} WHERE id = %s", [key]  # noqa: S608


def _ready(rows: Sequence[Sequence[Any]]) -> bool:
    return bool(rows) and rows[0][0] == TaskResultStatus.READY


def _not_started(task: Task, result_id: str) -> bool:
    backend = task.get_backend()
    if isinstance(backend, DatabaseBackend):
        # One indexed read of the status alone: this runs after every commit that enqueued the task.
        from django_tasks_db.models import DBTaskResult

        tasks_db = connections[router.db_for_read(DBTaskResult)]
        with tasks_db.cursor() as cursor:
            cursor.execute(*_status_statement(result_id, tasks_db))
            return _ready(cursor.fetchall())
    if not backend.supports_get_result:
        return False
    try:
        status = backend.get_result(result_id).status
    except TaskResultDoesNotExist:  # pruned meanwhile
        return False
    return bool(status == TaskResultStatus.READY)


# How much later a task that met an unreachable store is run again, attempt after attempt; after the
# last it fails as any task does.
OUTAGE_RETRY_DELAYS = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)


def run_or_retry_after_outage(task: Task, work: Callable[[], Any], *, attempt: int, **kwargs: Any) -> Any:
    """Run `work`, the body of a run of `task` (enqueued with `kwargs`, this run its `attempt`, from 0).
    If a store it needs is away (`STORE_OUTAGES`), the same task is enqueued again to run after the
    next of `OUTAGE_RETRY_DELAYS`, and this run ends: a brief Redis or database outage delays the
    task instead of losing it. Only for tasks safe to run again after an interruption, whose work has
    no safety net of its own (no sweep finds it owed)."""
    try:
        return work()
    except STORE_OUTAGES as exc:
        if attempt >= len(OUTAGE_RETRY_DELAYS):
            raise
        delay = OUTAGE_RETRY_DELAYS[attempt]
        logger.warning("%s met a store outage (%s); run again in %s", task.module_path, exc, delay)
        lost_connections_closed()  # a connection the database ended is made anew
        later = task.using(run_after=timezone.now() + delay) if task.get_backend().supports_defer else task
        later.enqueue(**kwargs, attempt=attempt + 1)
        return None
