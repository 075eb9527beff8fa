"""On SQLite with the database task backend, a burst of posts shares one fan-out task: a post written
while a task of an earlier post waits writes none, and that task's run delivers them all. On PostgreSQL
every post has its own task."""

from typing import Any

import pytest
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult

from weituan.core.worker import make_worker
from weituan.microblog.services.posts import post_create
from weituan.microblog.timelines import tasks
from weituan.microblog.timelines.models import FanoutJob
from weituan.microblog.timelines.queries import home_timeline_ids
from weituan.microblog.timelines.tasks import fanout_deliver_enqueue, fanout_deliver_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _database_tasks(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _fanout_rows() -> list[Any]:
    return list(DBTaskResult.objects.filter(task_path=fanout_deliver_task.module_path).order_by("enqueued_at"))


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


def test_a_burst_shares_one_task_on_sqlite_and_its_run_delivers_every_post(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any
) -> None:
    readers = people(2)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    posts = [post_create(author=merchant, text=f"第{index}团") for index in range(5)]
    rows = _fanout_rows()
    assert len(rows) == (1 if _sqlite() else 5)
    assert tasks.coalescing() is _sqlite()

    make_worker(batch=True).run()

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

    make_worker(batch=True).run()

    assert stored(reader) == [post.id for post in reversed(posts) if post is not gone]
    assert not FanoutJob.objects.filter(post_id=gone.id).exists()
