"""Background tasks of the timelines: deliver a post to followers' home timelines, or take it back out."""

import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import connections, router, transaction
from django.db.models import signals
from django.tasks import Task, TaskContext, TaskResultStatus, task
from django.utils import timezone

from weituan.core.tasks import enqueue_on_commit, run_or_retry_after_outage

log = logging.getLogger(__name__)

# A fan-out task run by the database backend's worker also runs up to this many fan-out tasks queued
# behind it (see `fanout_queued_run`).
FANOUT_TAKE_ALONG = 50


@task(takes_context=True)
def fanout_deliver_task(context: TaskContext, *, post_id: int) -> None:
    from weituan.microblog.timelines.fanout import fanout_deliver

    fanout_deliver(post_id=post_id)
    worker_ids = context.task_result.worker_ids
    if worker_ids:
        fanout_queued_run(worker_id=worker_ids[-1])


def fanout_queued_run(*, worker_id: str, most: int = FANOUT_TAKE_ALONG) -> int:
    """Run up to `most` fan-out tasks waiting in the database task queue, here and now; returns how many.

    A burst of posts queues a task per post, and the worker's own bookkeeping of a task (claiming it
    in a transaction of its own, then recording its end) cost more than a small delivery. Here the
    waiting tasks of the same path and queue go through the same steps for all of them at once: claimed
    with SKIP LOCKED (so no other worker runs them) and marked running by `worker_id` in one
    transaction, announced with the worker's signals, delivered together (`fanout_deliver_many`), then
    the successful ones recorded in one UPDATE (a failed one on its own, as the worker records it). A
    crash in between leaves them running, as the worker would.
    """
    from django.tasks.signals import task_finished, task_started
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.models import DBTaskResult
    from django_tasks_db.utils import exclusive_transaction

    from weituan.microblog.timelines.fanout import fanout_deliver, fanout_deliver_many

    backend = fanout_deliver_task.get_backend()
    if not isinstance(backend, DatabaseBackend):
        return 0
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

    def failed(row: Any, exc: Exception) -> None:
        row.set_failed(exc)
        task_finished.send(sender=sender, task_result=row.task_result)

    posts: list[tuple[Any, int]] = []
    for row in taken:
        task_started.send(sender=sender, task_result=row.task_result)
        try:
            posts.append((row, int(row.args_kwargs["kwargs"]["post_id"])))
        except Exception as exc:
            failed(row, exc)
    done = []
    try:
        fanout_deliver_many(post_ids=[post_id for _, post_id in posts])
        done = [row for row, _ in posts]
    except Exception:
        # Which post failed is not known: each is delivered again on its own (delivering twice is
        # harmless), so a failure is recorded on its own task only.
        log.warning("fan-out of %s queued posts together failed; delivering each alone", len(posts))
        for row, post_id in posts:
            try:
                fanout_deliver(post_id=post_id)
            except Exception as exc:
                failed(row, exc)
                continue
            done.append(row)
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
            task_finished.send(sender=sender, task_result=row.task_result)
    return len(taken)


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
    `written()`. `sql` is empty when a value is a database expression the ORM must compile."""

    backend: Any
    row: Any
    alias: str
    fields: list[Any]
    sql: str
    params: list[Any]

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

        row, alias = self.row, self.alias
        row._state.adding = False
        row._state.db = alias
        signals.post_save.send(
            sender=type(row), instance=row, created=True, update_fields=None, raw=False, using=alias
        )
        # Announced once the row is committed and visible to workers, as an enqueue after commit was.
        sender = type(self.backend)
        transaction.on_commit(
            lambda: task_enqueued.send(sender, task_result=row.task_result), using=alias, robust=False
        )


def task_row_insert(backend: Any, task_: Task, kwargs: dict[str, Any]) -> TaskRowInsert:
    """What the database backend's `enqueue` does before its INSERT (the task checked, the row made,
    `pre_save` sent), with the INSERT built once per database instead of compiled on every call. The
    row is the backend's own, made as it makes it; the values are prepared by its fields as `save`
    prepares them.
    """
    from django_tasks_db.compat import normalize_json
    from django_tasks_db.models import DBTaskResult

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
    alias = router.db_for_write(DBTaskResult)
    connection = connections[alias]
    found = _INSERTS.get((alias, connection.vendor))
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
        return TaskRowInsert(backend=backend, row=row, alias=alias, fields=fields, sql="", params=[])
    prepared = [field.get_db_prep_save(value, connection) for field, value in zip(fields, saved, strict=True)]
    return TaskRowInsert(backend=backend, row=row, alias=alias, fields=fields, sql=sql, params=prepared)


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


def fanout_deliver_enqueue(*, post_id: int) -> None:
    """Schedule the delivery of a new post to its author's followers, with the post's own transaction."""
    enqueue_with_transaction(fanout_deliver_task, post_id=post_id)


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
