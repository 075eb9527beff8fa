"""Fan-out tasks through the database task queue: a task run by the worker takes along the fan-out tasks
queued behind it, and each of them is recorded as the worker records a task."""

from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from weituan.core.worker import make_worker
from weituan.microblog.services.posts import post_create
from weituan.microblog.timelines import fanout, tasks
from weituan.microblog.timelines.models import FanoutJob
from weituan.microblog.timelines.tasks import SharedTaskResults, fanout_deliver_task

# The worker opens and commits transactions of its own, so these tests run outside a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _database_tasks(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    # A task per post, as on PostgreSQL: on SQLite a post written while a fan-out task waits writes
    # none of its own (test_fanout_coalesced.py).
    monkeypatch.setattr(tasks, "_waiting_task_covers", lambda post_id: False)


def _run_worker() -> Any:
    worker = make_worker(batch=True)
    worker.run()
    return worker


def test_one_task_run_delivers_the_posts_queued_behind_it(
    backend: str, merchant: Any, readers_of: Any, stored: Any
) -> None:
    readers = readers_of(merchant, 2)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(5)]
    DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path).delete()

    worker = _run_worker()

    assert worker._run_tasks == 1  # the other four went along with the first
    newest_first = [post.id for post in reversed(posts)]
    assert [stored(reader) for reader in readers] == [newest_first, newest_first]
    jobs = FanoutJob.objects.filter(post_id__in=newest_first)
    assert sorted(jobs.values_list("state", "delivered")) == [("delivered", 2)] * 5
    rows = list(DBTaskResult.objects.all())
    assert len(rows) == 5
    assert {(row.status, row.exception_class_path, row.return_value) for row in rows} == {
        ("SUCCESSFUL", "", None)
    }
    assert all(row.started_at and row.finished_at and row.finished_at >= row.started_at for row in rows)
    assert {tuple(row.worker_ids) for row in rows} == {(worker.worker_id,)}


def test_a_failing_task_taken_along_is_recorded_failed_and_the_rest_delivered(
    backend: str, merchant: Any, readers_of: Any, stored: Any
) -> None:
    (reader,) = readers_of(merchant, 1)
    first = post_create(author=merchant, text="第一团")
    broken = fanout_deliver_task.enqueue(post_id=first.id).id
    DBTaskResult.objects.filter(id=broken).update(args_kwargs={"args": [], "kwargs": {}})
    last = post_create(author=merchant, text="第二团")
    DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path).delete()

    _run_worker()

    assert stored(reader) == [last.id, first.id]
    statuses = dict(DBTaskResult.objects.values_list("id", "status"))
    assert statuses.pop(DBTaskResult.objects.get(id=broken).id) == "FAILED"
    assert set(statuses.values()) == {"SUCCESSFUL"}
    assert DBTaskResult.objects.get(id=broken).exception_class_path == "builtins.KeyError"


def test_when_delivering_together_fails_each_task_is_delivered_alone(
    backend: str, merchant: Any, readers_of: Any, stored: Any, monkeypatch: Any
) -> None:
    (reader,) = readers_of(merchant, 1)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(3)]
    DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path).delete()

    def broken(*, post_ids: Any) -> Any:
        raise RuntimeError("the store went away for a moment")

    monkeypatch.setattr(fanout, "fanout_deliver_many", broken)
    worker = _run_worker()

    assert worker._run_tasks == 1
    assert stored(reader) == [post.id for post in reversed(posts)]
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert sorted(FanoutJob.objects.values_list("state", "delivered")) == [("delivered", 1)] * 3


def test_when_the_run_tasks_own_post_fails_alone_its_task_fails_and_the_rest_are_recorded(
    backend: str, merchant: Any, readers_of: Any, stored: Any, monkeypatch: Any
) -> None:
    (reader,) = readers_of(merchant, 1)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(3)]
    DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path).delete()
    alone = fanout.fanout_deliver

    def broken(*, post_ids: Any) -> Any:
        raise RuntimeError("the store went away for a moment")

    def first_fails(*, post_id: int) -> int:
        if post_id == posts[0].id:
            raise RuntimeError("this one cannot be delivered")
        return alone(post_id=post_id)

    monkeypatch.setattr(fanout, "fanout_deliver_many", broken)
    monkeypatch.setattr(fanout, "fanout_deliver", first_fails)
    worker = _run_worker()

    assert worker._run_tasks == 1
    assert stored(reader) == [posts[2].id, posts[1].id]
    by_post = {row.args_kwargs["kwargs"]["post_id"]: row for row in DBTaskResult.objects.all()}
    assert by_post[posts[0].id].status == "FAILED"
    assert by_post[posts[0].id].exception_class_path == "builtins.RuntimeError"
    assert {by_post[post.id].status for post in posts[1:]} == {"SUCCESSFUL"}


def test_shared_task_results_are_each_rows_own(backend: str, merchant: Any) -> None:
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(3)]
    rows = list(
        DBTaskResult.objects.filter(task_path=fanout_deliver_task.module_path).order_by("enqueued_at")
    )
    assert len(rows) == len(posts)
    rows[1].claim("one-worker")
    rows[2].claim("one-worker")
    rows[2].set_failed(KeyError("post_id"))
    results = SharedTaskResults()
    for row in [*rows, *rows]:
        shared, own = results.of(row), row.task_result
        assert shared == own
        assert (shared.status, shared.kwargs, shared.worker_ids) == (own.status, own.kwargs, own.worker_ids)
    assert [result.kwargs["post_id"] for result in map(results.of, rows)] == [post.id for post in posts]
    assert results.of(rows[2]).errors[0].exception_class_path == "builtins.KeyError"
