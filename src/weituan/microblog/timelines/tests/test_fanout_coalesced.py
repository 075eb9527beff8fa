"""On SQLite with the database task backend, a burst of posts shares one fan-out task: a post written
while a task of an earlier post waits writes none, and that task's run delivers them all. On PostgreSQL
every post has its own task."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.core.tasks import OUTAGE_RETRY_DELAYS
from weituan.core.worker import batch_run, make_worker
from weituan.microblog.services.posts import post_create
from weituan.microblog.timelines import fanout, tasks
from weituan.microblog.timelines.models import FanoutJob
from weituan.microblog.timelines.queries import home_timeline_ids
from weituan.microblog.timelines.tasks import fanout_deliver_enqueue, fanout_deliver_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _database_tasks(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _fanout_rows() -> list[Any]:
    return list(
        DBTaskResult.objects.filter(task_path=fanout_deliver_task.module_path).order_by("enqueued_at")
    )


def _run_worker() -> None:
    """The worker in batch mode, on the fan-out tasks alone (following someone queues a backfill of
    the follower's timeline, which would bring the posts in by itself)."""
    DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path).delete()
    make_worker(batch=True).run()


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


def test_a_burst_shares_one_task_on_sqlite_and_its_run_delivers_every_post(
    backend: str, merchant: Any, readers_of: Any, stored: Any
) -> None:
    readers = readers_of(merchant, 2)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(5)]
    rows = _fanout_rows()
    assert len(rows) == (1 if _sqlite() else 5)
    assert tasks.coalescing() is _sqlite()

    _run_worker()

    newest_first = [post.id for post in reversed(posts)]
    assert [stored(reader) for reader in readers] == [newest_first, newest_first]
    assert sorted(FanoutJob.objects.values_list("state", "delivered")) == [("delivered", 2)] * 5
    assert {row.status for row in _fanout_rows()} == {"SUCCESSFUL"}


def test_a_post_written_after_the_task_was_claimed_writes_its_own(merchant: Any) -> None:
    post_create(author=merchant, text="第一团")
    (waiting,) = _fanout_rows()
    waiting.claim("a-worker")
    post_create(author=merchant, text="第二团")
    rows = _fanout_rows()
    assert len(rows) == 2
    assert rows[1].status == "READY"


def test_only_a_waiting_task_of_an_earlier_post_covers_one(merchant: Any) -> None:
    post = post_create(author=merchant, text="第一团")
    assert len(_fanout_rows()) == 1
    covered = 1 if _sqlite() else 0  # on PostgreSQL every post has its own task
    with transaction.atomic():
        fanout_deliver_enqueue(post_id=post.id + 1)  # written after it, so found by its run
    assert len(_fanout_rows()) == 2 - covered
    with transaction.atomic():
        fanout_deliver_enqueue(post_id=post.id - 1)  # an id drawn before it: its run would not look there
    assert len(_fanout_rows()) == 3 - covered


def test_a_run_delivers_a_backlog_page_by_page(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "COVERED_PAGE", 2)
    (reader,) = people(1)
    follow(reader, merchant)
    home_timeline_ids(reader.pk)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(7)]
    gone = posts[3]
    gone.deleted_at = gone.created_at
    gone.save(update_fields=["deleted_at"])

    _run_worker()

    assert stored(reader) == [post.id for post in reversed(posts) if post is not gone]
    assert not FanoutJob.objects.filter(post_id=gone.id).exists()


def test_a_run_ended_before_its_covered_posts_were_delivered_leaves_them_a_task(
    backend: str, merchant: Any, readers_of: Any, stored: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (reader,) = readers_of(merchant, 1)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(4)]
    calls = []

    def away(**kwargs: Any) -> list[int]:
        calls.append(kwargs)
        raise OperationalError("database is locked")

    monkeypatch.setattr(fanout, "posts_without_job", away)
    _run_worker()

    newest_first = [post.id for post in reversed(posts)]
    if not _sqlite():  # every post had its own task, and nothing was covered
        assert calls == [] and stored(reader) == newest_first
        return
    assert stored(reader) == [posts[0].id]  # the run's own post, then the covering failed
    first, again = _fanout_rows()
    assert first.status == "FAILED" and first.exception_class_path.endswith("OperationalError")
    assert (again.status, again.args_kwargs["kwargs"]) == ("READY", {"post_id": posts[0].id, "attempt": 1})
    assert again.run_after > timezone.now()  # after a pause
    monkeypatch.undo()
    DBTaskResult.objects.filter(id=again.id).update(run_after=timezone.now())
    _run_worker()
    assert stored(reader) == newest_first
    assert _fanout_rows()[1].status == "SUCCESSFUL"


@pytest.mark.parametrize("failing", ["covering", "delivering"])
def test_a_covering_run_ended_early_covers_again_from_the_lowest_post_of_its_tasks(
    merchant: Any, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    lower = post_create(author=merchant, text="第一团")
    (lower_task,) = _fanout_rows()
    lower_task.claim("a-worker")  # so the next post writes its own task
    higher = post_create(author=merchant, text="第二团")
    # The lower post's task waits again, behind the higher one's: the worker runs the higher one and
    # takes the lower one along.
    DBTaskResult.objects.filter(id=lower_task.id).update(
        status="READY", worker_ids=[], started_at=None, enqueued_at=timezone.now()
    )

    def away(*args: Any, **kwargs: Any) -> list[int]:
        raise OperationalError("database is locked")

    # The covering of the posts written meanwhile fails, or the delivery of the tasks taken does.
    if failing == "covering":
        monkeypatch.setattr(fanout, "posts_without_job", away)
    else:
        monkeypatch.setattr(tasks, "_delivered_each", away)
    _run_worker()

    waiting = [row for row in _fanout_rows() if row.status == "READY"]
    if not _sqlite():  # nothing is covered: no task is written again
        assert waiting == []
        return
    (again,) = waiting
    assert again.args_kwargs["kwargs"] == {"post_id": lower.id, "attempt": 1}
    assert lower.id < higher.id


def test_covering_again_gives_up_after_the_last_pause(
    merchant: Any, caplog: pytest.LogCaptureFixture
) -> None:
    post = post_create(author=merchant, text="第一团")
    before = len(_fanout_rows())
    tasks._covering_again(post.id, len(OUTAGE_RETRY_DELAYS))
    assert len(_fanout_rows()) == before
    assert "the sweep delivers them" in caplog.text


def test_a_task_written_to_gather_waits_before_a_worker_claims_it_and_still_covers(
    backend: str, merchant: Any, readers_of: Any, stored: Any, settings: Any
) -> None:
    settings.FANOUT_GATHER_MS = 60_000  # far longer than the test: it is made due by hand below
    (reader,) = readers_of(merchant, 1)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(3)]
    rows = _fanout_rows()
    _run_worker()  # nothing is due yet (on PostgreSQL each post's task is due at once)
    if not _sqlite():
        assert len(rows) == 3 and stored(reader) == [post.id for post in reversed(posts)]
        return
    (waiting,) = rows
    assert waiting.run_after > timezone.now() + timedelta(seconds=50)
    # Not claimed by the worker: still waiting, as written. (Whether the posts reached the reader's
    # timeline by some other way, as the backfill that following queues, is not this test's matter.)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.worker_ids, waiting.started_at) == ("READY", [], None), (
        list(DBTaskResult.objects.values_list("task_path", "status", "run_after", "worker_ids")),
        timezone.now(),
    )
    # While it waits, it still covers the posts after its own: those due within the look-up's minute.
    settings.FANOUT_GATHER_MS = 100
    DBTaskResult.objects.filter(id=waiting.id).update(run_after=timezone.now() + timedelta(milliseconds=100))
    later = post_create(author=merchant, text="第三团")
    assert len(_fanout_rows()) == 1
    DBTaskResult.objects.filter(id=waiting.id).update(run_after=timezone.now())
    _run_worker()
    assert stored(reader) == [later.id, *(post.id for post in reversed(posts))]
    assert [row.status for row in _fanout_rows()] == ["SUCCESSFUL"]


def test_a_batch_worker_waits_for_a_fanout_still_gathering(
    backend: str, merchant: Any, readers_of: Any, settings: Any
) -> None:
    settings.FANOUT_GATHER_MS = 60_000  # far longer than the test: made due soon by hand below
    readers_of(merchant, 1)
    DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path).delete()
    post = post_create(author=merchant, text="第一团")
    worker = make_worker(batch=True)
    worker.run()  # the worker alone leaves a task not due yet (on SQLite)
    assert FanoutJob.objects.filter(post_id=post.id).exists() is not _sqlite()
    settings.FANOUT_GATHER_MS = 1_000
    due = timezone.now() + timedelta(milliseconds=200)
    DBTaskResult.objects.filter(task_path=fanout_deliver_task.module_path, status="READY").update(
        run_after=due
    )
    batch_run(worker)  # `weituan worker --batch` waits for it
    assert FanoutJob.objects.get(post_id=post.id).state == "delivered"
    assert [row.status for row in _fanout_rows()] == ["SUCCESSFUL"]


def test_a_gathering_task_yields_to_the_tasks_waiting_with_no_time(
    merchant: Any, readers_of: Any, settings: Any
) -> None:
    settings.FANOUT_GATHER_MS = 60_000
    readers_of(merchant, 1)  # following queues a backfill of the reader's timeline, with no time
    post_create(author=merchant, text="第一团")
    (gathering,) = _fanout_rows()
    if not _sqlite():  # no task waits to gather there: each has the task's own priority and no time
        assert gathering.priority == fanout_deliver_task.priority
        return
    assert gathering.priority < fanout_deliver_task.priority
    DBTaskResult.objects.filter(id=gathering.id).update(run_after=timezone.now())  # due now
    others = DBTaskResult.objects.exclude(task_path=fanout_deliver_task.module_path)
    others.exclude(id__in=others.ready().values("id")).delete()  # none due later: the count is exact
    waiting = others.count()
    assert waiting >= 1
    make_worker(batch=True, max_tasks=waiting).run()
    gathering.refresh_from_db()
    assert gathering.status == "READY"
    assert set(others.values_list("status", flat=True)) == {"SUCCESSFUL"}
    make_worker(batch=True).run()
    gathering.refresh_from_db()
    assert gathering.status == "SUCCESSFUL"
