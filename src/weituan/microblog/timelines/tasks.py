"""Background tasks of the timelines: deliver a post to followers' home timelines, or take it back out."""

import copy
import dataclasses
import json
import logging
import weakref
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, connections, router, transaction
from django.db.models import signals
from django.tasks import Task, TaskContext, TaskResultStatus, task
from django.utils import timezone

from weituan.core.ids import id_at
from weituan.core.rows import fetch_rows
from weituan.core.tasks import OUTAGE_RETRY_DELAYS, enqueue_on_commit, run_or_retry_after_outage

log = logging.getLogger(__name__)

# A fan-out task run by the database backend's worker also runs up to this many fan-out tasks queued
# behind it (see `fanout_queued_run`).
FANOUT_TAKE_ALONG = 50
# Posts delivered together by a task's run of the posts written while it waited (`coalescing`).
COVERED_PAGE = 200


@task(takes_context=True)
def fanout_deliver_task(context: TaskContext, *, post_id: int, attempt: int = 0) -> None:
    from weituan.microblog.timelines.fanout import fanout_deliver

    worker_ids = context.task_result.worker_ids
    if worker_ids:  # run by the database backend's worker: the posts queued behind it go along
        fanout_queued_run(worker_id=worker_ids[-1], along=post_id, attempt=attempt)
    else:
        fanout_deliver(post_id=post_id)


def fanout_queued_run(
    *, worker_id: str, most: int = FANOUT_TAKE_ALONG, along: int | None = None, attempt: int = 0
) -> int:
    """Run up to `most` fan-out tasks waiting in the database task queue, here and now; returns how many.
    `along` is the post of the task being run (its `attempt`), delivered with them; an error
    delivering it is raised (once the others are recorded), so that task fails as it would have alone.

    A burst of posts queues a task per post, and the worker's own bookkeeping of a task (claiming it
    in a transaction of its own, then recording its end) cost more than a small delivery. Here the
    waiting tasks of the same path and queue go through the same steps for all of them at once: claimed
    with SKIP LOCKED (so no other worker runs them) and marked running by `worker_id` in one
    transaction, announced with the worker's signals, delivered together (`fanout_deliver_many`), then
    the successful ones recorded in one UPDATE (a failed one on its own, as the worker records it). A
    crash in between leaves them running, as the worker would.

    Where a task covers the posts written while it waited (`coalescing`), they are delivered next; if
    the run ends by an error before they all were, the task is enqueued again (to run a little later,
    a few times at most) so they still have one.
    """
    covering = along is not None and coalescing()
    claimed: list[int] = []  # the posts of the tasks the run took, as soon as they are claimed
    try:
        taken, delivered, along_failed = _queued_run(
            worker_id=worker_id, most=most, along=along, claimed=claimed
        )
        if covering:
            _covered_delivered(low=min(delivered), listed=delivered)
    except Exception:
        if covering:
            assert along is not None
            # The covered posts start at the lowest post of the run's tasks.
            _covering_again(min([along, *claimed]), attempt)
        raise
    if along_failed is not None:
        raise along_failed
    return taken


def _queued_run(
    *, worker_id: str, most: int, along: int | None, claimed: list[int]
) -> tuple[int, set[int], Exception | None]:
    """The body of `fanout_queued_run` for the claimed tasks and `along`: how many tasks were taken,
    the posts delivered, and the error delivering `along` alone, if it failed. The posts of the tasks
    taken are added to `claimed` once they are claimed, before any is delivered."""
    from django.tasks.signals import task_finished, task_started
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.utils import exclusive_transaction

    from weituan.microblog.timelines.fanout import fanout_deliver

    backend = fanout_deliver_task.get_backend()
    if not isinstance(backend, DatabaseBackend):
        if along is not None:
            fanout_deliver(post_id=along)
        return 0, set() if along is None else {along}, None
    alias = router.db_for_write(DBTaskResult)
    waiting = (
        DBTaskResult.objects.using(alias)
        .ready()
        .filter(
            backend_name=backend.alias,
            task_path=fanout_deliver_task.module_path,
            queue_name=fanout_deliver_task.queue_name,
        )
    )
    # As the worker claims: SKIP LOCKED, and on SQLite an exclusive transaction.
    with exclusive_transaction(alias):
        taken = list(waiting.select_for_update(skip_locked=True)[:most])
        started = timezone.now()
        # One UPDATE per distinct list of earlier workers (a first run has none, so nearly always one),
        # rather than one CASE per row and column.
        by_workers: dict[str, list[Any]] = {}
        for row in taken:
            row.status = TaskResultStatus.RUNNING
            row.started_at = started
            row.worker_ids = [*row.worker_ids, worker_id]
            by_workers.setdefault(json.dumps(row.worker_ids), []).append(row)
        for rows in by_workers.values():
            DBTaskResult.objects.using(alias).filter(id__in=[row.id for row in rows]).update(
                status=TaskResultStatus.RUNNING, started_at=started, worker_ids=rows[0].worker_ids
            )
    sender = type(backend)
    results = SharedTaskResults()

    def failed(row: Any, exc: Exception) -> None:
        row.set_failed(exc)
        task_finished.send(sender=sender, task_result=results.of(row))

    posts: list[tuple[Any, int]] = [] if along is None else [(None, along)]
    for row in taken:
        task_started.send(sender=sender, task_result=results.of(row))
        try:
            posts.append((row, int(row.args_kwargs["kwargs"]["post_id"])))
        except Exception as exc:
            failed(row, exc)
            continue
        claimed.append(posts[-1][1])
    done: list[Any] = []
    along_failed: list[Exception] = []
    for row, error in _delivered_each(posts):
        if error is None:
            if row is not None:
                done.append(row)
        elif row is None:
            along_failed.append(error)
        else:
            failed(row, error)
    if done:
        finished = timezone.now()
        DBTaskResult.objects.using(alias).filter(id__in=[row.id for row in done]).update(
            status=TaskResultStatus.SUCCESSFUL,
            finished_at=finished,
            return_value=None,
            exception_class_path="",
            traceback="",
        )
        for row in done:
            row.status, row.finished_at, row.return_value = TaskResultStatus.SUCCESSFUL, finished, None
            task_finished.send(sender=sender, task_result=results.of(row))
    return len(taken), {post_id for _, post_id in posts}, along_failed[0] if along_failed else None


def _delivered_each(posts: list[tuple[Any, int]]) -> list[tuple[Any, Exception | None]]:
    """Deliver the posts (each with what it came with) together, and what each came with paired with
    the error delivering it failed with (None when it did not)."""
    from weituan.microblog.timelines.fanout import fanout_deliver, fanout_deliver_many

    if not posts:
        return []
    try:
        fanout_deliver_many(post_ids=[post_id for _, post_id in posts])
        return [(row, None) for row, _ in posts]
    except Exception:
        # Which post failed is not known: each is delivered again on its own (delivering twice is
        # harmless), so a failure is recorded on its own task only.
        log.warning("fan-out of %s queued posts together failed; delivering each alone", len(posts))
    outcomes: list[tuple[Any, Exception | None]] = []
    for row, post_id in posts:
        try:
            fanout_deliver(post_id=post_id)
        except Exception as exc:
            outcomes.append((row, exc))
            continue
        outcomes.append((row, None))
    return outcomes


def _covered_delivered(*, low: int, listed: set[int]) -> None:
    """Deliver the posts written while a task waited, which wrote no task of their own
    (`fanout_deliver_enqueue`): those without a fan-out job from `low` (the oldest post of the run's
    tasks) up to any committed before the claim (a second's margin over the clock their ids were
    drawn by), page by page; not older than the fan-out jobs are kept, whose posts' jobs may be gone."""
    from weituan.microblog.timelines.fanout import posts_without_job
    from weituan.microblog.timelines.upkeep import FANOUT_JOB_KEEP

    now = timezone.now()
    low, high = max(low, id_at(now - FANOUT_JOB_KEEP)), id_at(now + timedelta(seconds=1))
    while True:
        page = posts_without_job(low=low, high=high, most=COVERED_PAGE)
        for post_id, error in _delivered_each(
            [(post_id, post_id) for post_id in page if post_id not in listed]
        ):
            if error is not None:  # the sweep delivers it later (`upkeep.fanout_sweep`)
                log.error("fan-out of post %s failed", post_id, exc_info=error)
        if len(page) < COVERED_PAGE:
            return
        low = page[-1] + 1


def _covering_again(post_id: int, attempt: int) -> None:
    """Enqueue the fan-out task of `post_id` again, to run after the next of OUTAGE_RETRY_DELAYS, for a
    run that ended before the posts it covers were all delivered; after the last, they are left to
    the sweep (`upkeep.fanout_sweep`)."""
    if attempt >= len(OUTAGE_RETRY_DELAYS):
        log.error("fan-out of the posts from %s gave up; the sweep delivers them", post_id)
        return
    delay = OUTAGE_RETRY_DELAYS[attempt]
    try:
        later = fanout_deliver_task.using(run_after=timezone.now() + delay)
        later.enqueue(post_id=post_id, attempt=attempt + 1)
    except Exception:  # the error being raised says more; the sweep delivers them
        log.exception("fan-out of the posts from %s could not be enqueued again", post_id)
        return
    log.warning("fan-out of the posts from %s ended early; run again in %s", post_id, delay)


class SharedTaskResults:
    """The `task_result` of rows of the database task backend, as the worker's signals carry it, with
    the task of the rows that name the same one (path, priority, queue, time, backend) made once: a
    row's own `task_result` imports its task and validates it against its backend anew each time,
    which was most of what the signals of a batch of taken-along tasks cost."""

    def __init__(self) -> None:
        self._first: dict[tuple[Any, ...], Any] = {}

    def of(self, row: Any) -> Any:
        key = (row.task_path, row.priority, row.queue_name, row.run_after, row.backend_name)
        first = self._first.get(key)
        if first is None or row.status == TaskResultStatus.FAILED:  # a failure's errors: as the row has them
            result = row.task_result
            self._first.setdefault(key, result)
            return result
        from django_tasks_db.utils import normalize_uuid

        result = dataclasses.replace(
            first,
            db_result=row,
            id=normalize_uuid(row.id),
            status=TaskResultStatus[row.status],
            enqueued_at=row.enqueued_at,
            started_at=row.started_at,
            last_attempted_at=row.started_at,
            finished_at=row.finished_at,
            args=row.args_kwargs["args"],
            kwargs=row.args_kwargs["kwargs"],
            errors=[],
            worker_ids=row.worker_ids,
        )
        object.__setattr__(result, "_return_value", row.return_value)
        return result


@task()
def fanout_withdraw_task(*, post_id: int, author_id: int, attempt: int = 0) -> None:
    from weituan.microblog.timelines.fanout import fanout_withdraw

    run_or_retry_after_outage(
        fanout_withdraw_task,
        partial(fanout_withdraw, post_id=post_id, author_id=author_id),
        attempt=attempt,
        post_id=post_id,
        author_id=author_id,
    )


# The upkeep of one home timeline after a change of relations: idempotent, and nothing else would do it
# later, so a Redis or database outage runs it again (see `run_or_retry_after_outage`).


@task()
def home_timeline_add_author_task(*, user_id: int, author_id: int, attempt: int = 0) -> None:
    from weituan.microblog.timelines.home import home_timeline_add_author

    run_or_retry_after_outage(
        home_timeline_add_author_task,
        partial(home_timeline_add_author, user_id=user_id, author_id=author_id),
        attempt=attempt,
        user_id=user_id,
        author_id=author_id,
    )


@task()
def home_timeline_drop_authors_task(
    *, user_id: int, author_ids: list[int], with_reposts: bool, attempt: int = 0
) -> None:
    from weituan.microblog.timelines.home import home_timeline_drop_authors

    run_or_retry_after_outage(
        home_timeline_drop_authors_task,
        partial(
            home_timeline_drop_authors, user_id=user_id, author_ids=author_ids, with_reposts=with_reposts
        ),
        attempt=attempt,
        user_id=user_id,
        author_ids=author_ids,
        with_reposts=with_reposts,
    )


@task()
def home_timeline_drop_reblogs_task(*, user_id: int, author_id: int, attempt: int = 0) -> None:
    from weituan.microblog.timelines.home import home_timeline_drop_reblogs

    run_or_retry_after_outage(
        home_timeline_drop_reblogs_task,
        partial(home_timeline_drop_reblogs, user_id=user_id, author_id=author_id),
        attempt=attempt,
        user_id=user_id,
        author_id=author_id,
    )


@task()
def fanout_jobs_prune_task() -> int:
    from weituan.microblog.timelines.upkeep import fanout_jobs_prune

    return fanout_jobs_prune()


@task()
def fanout_sweep_task() -> int:
    from weituan.microblog.timelines.upkeep import fanout_sweep

    return fanout_sweep()


@task()
def mutes_expired_delete_task() -> int:
    """Delete the mutes that have ended (reads ignore them already; this keeps the table small)."""
    from weituan.microblog.services.relations import mutes_expired_delete

    return mutes_expired_delete()


def fanout_runs_in_worker(*, using: str) -> bool:
    """Whether a new post's fan-out is a task row the database task backend writes with the post on
    database `using`: a worker runs it, after the post's commit and apart from the writing thread."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    return (
        isinstance(fanout_deliver_task.get_backend(), DatabaseBackend)
        and router.db_for_write(DBTaskResult) == using
    )


def _database_backend(task_: Task) -> Any:
    """The task's backend when it is the database one writing to a database the caller is in a
    transaction on (so a row written now commits with the caller's change), else None."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    backend = task_.get_backend()
    if not isinstance(backend, DatabaseBackend):
        return None
    if not transaction.get_connection(router.db_for_write(DBTaskResult)).in_atomic_block:
        return None
    return backend


_INSERTS: dict[tuple[str, str], tuple[list[Any], str]] = {}


@dataclass(slots=True)
class TaskRowInsert:
    """A task's row as the database backend's `enqueue` makes it, not yet written: its INSERT (`sql`,
    `params`), to run in the caller's transaction on its own or inside a larger statement; then
    `written()`. `sql` is empty when a value is a database expression the ORM must compile.

    `row` is the row's model instance. A row prepared from a template (`_RowTemplate`) makes it from
    `template` and `own` (its id, arguments and time of enqueueing) only when something asks for it:
    a `post_save` receiver, or the `task_enqueued` announcement after the commit."""

    backend: Any
    made: Any
    alias: str
    fields: list[Any]
    sql: str
    params: list[Any]
    template: "_RowTemplate | None" = None
    own: dict[str, Any] | None = None

    @property
    def row(self) -> Any:
        if self.made is None:
            from django_tasks_db.models import DBTaskResult

            assert self.template is not None and self.own is not None
            own = self.own
            self.made = DBTaskResult(id=own["id"], args_kwargs=own["args_kwargs"], **self.template.shared)
            self.made.enqueued_at = own["enqueued_at"]  # as `pre_save` of its auto_now_add field sets it
        return self.made

    def write(self) -> None:
        """Run the INSERT on its own, then `written()`."""
        if not self.sql:
            type(self.row)._base_manager._insert([self.row], fields=self.fields, using=self.alias)
        else:
            with connections[self.alias].cursor() as cursor:
                cursor.execute(self.sql, self.params)
        self.written()

    def written(self) -> None:
        """What follows the row's save: `post_save`, and `task_enqueued` once the row is committed."""
        from django_tasks_db.compat import task_enqueued
        from django_tasks_db.models import DBTaskResult

        alias = self.alias
        if self.made is not None or signals.post_save.has_listeners(DBTaskResult):
            signals.post_save.send(
                sender=DBTaskResult,
                instance=self._saved(),
                created=True,
                update_fields=None,
                raw=False,
                using=alias,
            )
        # Announced once the row is committed and visible to workers, as an enqueue after commit was;
        # not at all when nothing would hear it.
        if not _enqueue_heard():
            return
        sender = type(self.backend)
        transaction.on_commit(
            lambda: task_enqueued.send(sender, task_result=self._saved().task_result),
            using=alias,
            robust=False,
        )

    def _saved(self) -> Any:
        """`row`, marked saved to the database as `save` leaves an instance."""
        row = self.row
        row._state.adding = False
        row._state.db = self.alias
        return row


def _enqueue_heard() -> bool:
    """Whether `task_enqueued` reaches anyone: a receiver other than Django's own, which only logs the
    enqueue at DEBUG, or that one while its logger takes DEBUG records."""
    from django.tasks.signals import log_task_enqueued, logger
    from django_tasks_db.compat import task_enqueued

    for entry in task_enqueued.receivers:
        receiver = entry[1]() if isinstance(entry[1], weakref.ReferenceType) else entry[1]
        if receiver is not None and receiver is not log_task_enqueued:
            return True
        if receiver is log_task_enqueued and logger.isEnabledFor(logging.DEBUG):
            return True
    return False


@dataclass(slots=True)
class _RowTemplate:
    """The prepared values of a task's first row on a database, as `task_row_insert` made them the
    ordinary way, for the rows after it: only the id, the arguments and the time of enqueueing differ
    from one row of the same task, backend and database to the next (the rest are the task's own
    settings, the model's defaults, and the `run_after` the backend's `pre_save` receiver sets to the
    same value for every task without one). Used only while that receiver is the only one `pre_save`
    has for the model (`_pre_save_only_run_after`): any other is sent every row, the ordinary way."""

    params: list[Any]
    shared: dict[str, Any]  # the instance's values every row of the task has
    id_at: int
    args_at: int
    enqueued_at: int

    @classmethod
    def of(cls, row: Any, fields: list[Any], saved: list[Any], connection: Any) -> "_RowTemplate":
        """The template of `row`, whose fields' `pre_save` gave `saved`. Its values are prepared again
        from copies, so no row shares a mutable value (a JSON list) with the first row's instance."""
        names = [field.attname for field in fields]
        return cls(
            params=[
                field.get_db_prep_save(copy.deepcopy(value), connection)
                for field, value in zip(fields, saved, strict=True)
            ],
            shared={
                name: getattr(row, name)
                for name in ("priority", "task_path", "queue_name", "run_after", "backend_name")
            },
            id_at=names.index("id"),
            args_at=names.index("args_kwargs"),
            enqueued_at=names.index("enqueued_at"),
        )

    def insert(
        self, backend: Any, alias: str, fields: list[Any], sql: str, own: dict[str, Any]
    ) -> TaskRowInsert:
        """The row whose own values are `own` (id, args_kwargs, enqueued_at), prepared by their fields."""
        connection = connections[alias]
        params = self.params.copy()
        params[self.id_at] = fields[self.id_at].get_db_prep_save(own["id"], connection)
        params[self.args_at] = fields[self.args_at].get_db_prep_save(own["args_kwargs"], connection)
        params[self.enqueued_at] = fields[self.enqueued_at].get_db_prep_save(own["enqueued_at"], connection)
        return TaskRowInsert(
            backend=backend,
            made=None,
            alias=alias,
            fields=fields,
            sql=sql,
            params=params,
            template=self,
            own=own,
        )


def _pre_save_only_run_after() -> bool:
    """Whether the database backend's own receiver, which sets `run_after` when it is empty, is all
    that listens to `pre_save` of a task's row (no other model's or sender-less receiver either)."""
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.signal_handlers import set_run_after

    sync, asynchronous = signals.pre_save._live_receivers(DBTaskResult)
    return not asynchronous and len(sync) == 1 and sync[0] is set_run_after


# A backend's templates, kept on the backend (made anew when the TASKS setting changes), per database
# and task; the task was checked by the backend when its template was made.
_TEMPLATES_ATTRIBUTE = "_weituan_row_templates"


def task_row_insert(backend: Any, task_: Task, kwargs: dict[str, Any]) -> TaskRowInsert:
    """What the database backend's `enqueue` does before its INSERT (the task checked, the row made,
    `pre_save` sent), with the INSERT built once per database instead of compiled on every call. The
    row is the backend's own, made as it makes it; the values are prepared by its fields as `save`
    prepares them.

    The first row of a task on a database is made that way; the rows after it reuse its prepared
    values but for the id, the arguments and the time (`_RowTemplate`), while the backend's own
    `pre_save` receiver is the only one. A task given a `run_after` of its own gets no template.
    """
    from django_tasks_db.compat import normalize_json
    from django_tasks_db.models import DBTaskResult

    alias = router.db_for_write(DBTaskResult)
    connection = connections[alias]
    key = (alias, connection.vendor, task_.module_path, task_.queue_name, task_.priority)
    templates: dict[tuple[Any, ...], _RowTemplate] = backend.__dict__.setdefault(_TEMPLATES_ATTRIBUTE, {})
    # Made, or used, only while the row's values are the backend's alone.
    templated = task_.run_after is None and _pre_save_only_run_after()
    template = templates.get(key) if templated else None
    found = _INSERTS.get((alias, connection.vendor))
    if template is not None and found is not None:
        own = {
            "id": backend._get_id(),
            "args_kwargs": normalize_json({"args": (), "kwargs": kwargs}),
            "enqueued_at": timezone.now(),
        }
        return template.insert(backend, alias, *found, own)
    backend.validate_task(task_)
    values: dict[str, Any] = {
        "id": backend._get_id(),
        "args_kwargs": normalize_json({"args": (), "kwargs": kwargs}),
        "priority": task_.priority,
        "task_path": task_.module_path,
        "queue_name": task_.queue_name,
        "run_after": task_.run_after,
        "backend_name": backend.alias,
    }
    row: Any = DBTaskResult(**values)
    if found is None:
        fields = [field for field in DBTaskResult._meta.local_concrete_fields if not field.generated]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(DBTaskResult._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
        found = _INSERTS[(alias, connection.vendor)] = (fields, sql)
    fields, sql = found
    # As Model.save_base: pre_save first (the backend's receiver fills `run_after`).
    signals.pre_save.send(sender=DBTaskResult, instance=row, raw=False, using=alias, update_fields=None)
    saved = [field.pre_save(row, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in saved):
        return TaskRowInsert(backend=backend, made=row, alias=alias, fields=fields, sql="", params=[])
    prepared = [field.get_db_prep_save(value, connection) for field, value in zip(fields, saved, strict=True)]
    if templated:
        templates[key] = _RowTemplate.of(row, fields, saved, connection)
    return TaskRowInsert(backend=backend, made=row, alias=alias, fields=fields, sql=sql, params=prepared)


def enqueue_with_transaction(task_: Task, **kwargs: Any) -> None:
    """Enqueue `task_` so it runs if and only if the caller's transaction commits.

    With the database task backend the task row is written inside that transaction: the change and its
    task commit together, so a server stopped right after the commit cannot leave the change without its
    task (the worker cannot see the row before the commit). Other backends enqueue after the commit.
    """
    backend = _database_backend(task_)
    if backend is not None:
        task_row_insert(backend, task_, kwargs).write()
    else:
        enqueue_on_commit(task_, **kwargs)


# The priority of a fan-out task written to wait (FANOUT_GATHER_MS). Its time is a real one, and the
# worker claims the tasks of a priority by time, those with no time of their own last: at the same
# priority a stream of posts whose runs outlast the wait would keep every other task waiting. One
# lower, the tasks waiting with no time go first, and the fan-out runs between them.
FANOUT_GATHERED_PRIORITY = fanout_deliver_task.priority - 1


def fanout_deliver_enqueue(*, post_id: int) -> None:
    """Schedule the delivery of a new post to its author's followers, with the post's own transaction.

    On SQLite with the database task backend a burst of posts shares one task: a post written while a
    fan-out task of an earlier post still waits (not yet claimed by a worker) writes none of its own,
    since that task's run delivers every post from its own on that has no fan-out job yet
    (`fanout_queued_run`). The check is made in the post's write transaction, which holds SQLite's
    write lock, and a worker claims a task under that lock too: a task seen waiting now is claimed
    after this post commits, and its run, which reads the posts after its claim, finds this one. Only
    a task of a post with a smaller id counts, since an id drawn before the write lock was taken can
    be smaller than that of a post committed first. Elsewhere (PostgreSQL) each post has its task.

    A task written so waits FANOUT_GATHER_MS before a worker may claim it: under a stream of posts its
    run then delivers the posts of that while together, rather than a worker claiming, delivering and
    recording a handful at a time, each time taking SQLite's write lock from the posts."""
    if not coalescing():
        enqueue_with_transaction(fanout_deliver_task, post_id=post_id)
        return
    if _waiting_task_covers(post_id):
        return
    gather = settings.FANOUT_GATHER_MS
    waiting = fanout_deliver_task
    if gather:
        waiting = fanout_deliver_task.using(
            run_after=timezone.now() + timedelta(milliseconds=gather), priority=FANOUT_GATHERED_PRIORITY
        )
    enqueue_with_transaction(waiting, post_id=post_id)


# Per task path, queue and backend: whether a fan-out task not yet claimed covers a post (see above).
_COVERING: dict[tuple[str, str, str, bool], str] = {}


def _waiting_task_covers(post_id: int) -> bool:
    """Whether a waiting fan-out task covers `post_id`; call only while `coalescing()`."""
    backend = _database_backend(fanout_deliver_task)
    if backend is None:
        return False
    from django_tasks_db.models import DBTaskResult, get_date_max

    key = (fanout_deliver_task.module_path, fanout_deliver_task.queue_name, backend.alias)
    gathering = bool(settings.FANOUT_GATHER_MS)
    sql = _COVERING.get((*key, gathering))
    if sql is None:
        table = connection.ops.quote_name(DBTaskResult._meta.db_table)
        # `status = 'READY'` as the partial index of waiting tasks is written, and its next columns
        # (priority, run_after), so the look-up is a seek into it: to the tasks with no time of their
        # own (as the backend stores that), or, while tasks are written to wait (FANOUT_GATHER_MS, at
        # their own priority), to those due from a minute ago to a second past that wait, not the
        # tasks scheduled later. A task that has waited longer (a worker far behind) is not found: the
        # post writes its own.
        due = "run_after >= %s AND run_after <= %s" if gathering else "run_after = %s"
        sql = _COVERING[(*key, gathering)] = (
            f"SELECT 1 FROM {table} WHERE status = 'READY' AND priority = %s AND {due}"  # noqa: S608
            " AND task_path = %s AND queue_name = %s AND backend_name = %s"
            " AND json_extract(args_kwargs, '$.kwargs.post_id') <= %s LIMIT 1"
        )
    field = DBTaskResult._meta.get_field("run_after")
    if gathering:
        now = timezone.now()
        times = [
            now - timedelta(minutes=1),
            now + timedelta(milliseconds=settings.FANOUT_GATHER_MS, seconds=1),
        ]
    else:
        times = [get_date_max()]
    due_params = [field.get_db_prep_value(moment, connection) for moment in times]
    priority = FANOUT_GATHERED_PRIORITY if gathering else fanout_deliver_task.priority
    return bool(fetch_rows(sql, [priority, *due_params, *key, post_id]))


def coalescing() -> bool:
    """Whether a fan-out task also delivers the posts written while it waited (`fanout_deliver_enqueue`):
    with the database task backend keeping its rows in the posts' own SQLite database, where one
    transaction writes at a time."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    from weituan.microblog.models import Post

    if not isinstance(fanout_deliver_task.get_backend(), DatabaseBackend):
        return False
    alias = router.db_for_write(DBTaskResult)
    return alias == router.db_for_write(Post) and connections[alias].vendor == "sqlite"


def fanout_deliver_row(*, post_id: int, using: str) -> TaskRowInsert | None:
    """The fan-out task's row of a new post, for the caller to write with the post on database `using`
    (in its transaction, or in the same statement), then `written()`; None unless the database task
    backend keeps its rows there (the caller then uses `fanout_deliver_enqueue`)."""
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult

    backend = fanout_deliver_task.get_backend()
    if not isinstance(backend, DatabaseBackend) or router.db_for_write(DBTaskResult) != using:
        return None
    insert = task_row_insert(backend, fanout_deliver_task, {"post_id": post_id})
    return insert if insert.sql else None
