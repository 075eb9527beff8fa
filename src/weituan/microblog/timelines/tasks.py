"""Background tasks of the timelines: deliver a post to followers' home timelines, or take it back out."""

from typing import Any

from django.db import connections, router, transaction
from django.db.models import signals
from django.tasks import Task, task

from weituan.core.tasks import enqueue_on_commit


@task()
def fanout_deliver_task(*, post_id: int) -> None:
    from weituan.microblog.timelines.fanout import fanout_deliver

    fanout_deliver(post_id=post_id)


@task()
def fanout_withdraw_task(*, post_id: int, author_id: int) -> None:
    from weituan.microblog.timelines.fanout import fanout_withdraw

    fanout_withdraw(post_id=post_id, author_id=author_id)


@task()
def home_timeline_add_author_task(*, user_id: int, author_id: int) -> None:
    from weituan.microblog.timelines.home import home_timeline_add_author

    home_timeline_add_author(user_id=user_id, author_id=author_id)


@task()
def home_timeline_drop_authors_task(*, user_id: int, author_ids: list[int], with_reposts: bool) -> None:
    from weituan.microblog.timelines.home import home_timeline_drop_authors

    home_timeline_drop_authors(user_id=user_id, author_ids=author_ids, with_reposts=with_reposts)


@task()
def fanout_jobs_prune_task() -> int:
    from weituan.microblog.timelines.fanout import fanout_jobs_prune

    return fanout_jobs_prune()


@task()
def fanout_sweep_task() -> int:
    from weituan.microblog.timelines.fanout import fanout_sweep

    return fanout_sweep()


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


def _task_row_write(backend: Any, task_: Task, kwargs: dict[str, Any]) -> None:
    """What the database backend's `enqueue` does (the task checked, its row written, `task_enqueued`
    sent, here once the row is committed), with the row's INSERT built once per database instead of
    compiled on every call. The row is the backend's own, made as it makes it; the values are prepared by
    its fields as `save` prepares them.
    """
    from django_tasks_db.compat import normalize_json, task_enqueued
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
    # As Model.save_base: pre_save first (the backend's receiver fills `run_after`), post_save after.
    signals.pre_save.send(sender=DBTaskResult, instance=row, raw=False, using=alias, update_fields=None)
    saved = [field.pre_save(row, True) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in saved):
        # A value the ORM must compile (a database expression): its own INSERT.
        DBTaskResult._base_manager._insert([row], fields=fields, using=alias)  # type: ignore[attr-defined]
    else:
        prepared = [
            field.get_db_prep_save(value, connection) for field, value in zip(fields, saved, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, prepared)
    row._state.adding = False
    row._state.db = alias
    signals.post_save.send(
        sender=DBTaskResult, instance=row, created=True, update_fields=None, raw=False, using=alias
    )
    # Announced once the row is committed and visible to workers, as an enqueue after commit was.
    sender = type(backend)
    transaction.on_commit(
        lambda: task_enqueued.send(sender, task_result=row.task_result), using=alias, robust=False
    )


def enqueue_with_transaction(task_: Task, **kwargs: Any) -> None:
    """Enqueue `task_` so it runs if and only if the caller's transaction commits.

    With the database task backend the task row is written inside that transaction: the change and its
    task commit together, so a server stopped right after the commit cannot leave the change without its
    task (the worker cannot see the row before the commit). Other backends enqueue after the commit.
    """
    backend = _database_backend(task_)
    if backend is not None:
        _task_row_write(backend, task_, kwargs)
    else:
        enqueue_on_commit(task_, **kwargs)


def fanout_deliver_enqueue(*, post_id: int) -> None:
    """Schedule the delivery of a new post to its author's followers, with the post's own transaction."""
    enqueue_with_transaction(fanout_deliver_task, post_id=post_id)
