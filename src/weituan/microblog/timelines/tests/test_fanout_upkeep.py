"""Fan-out upkeep run periodically: pruning finished jobs, and delivering posts whose job was never made."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.module_loading import import_string

from weituan.core.ids import id_at
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create
from weituan.microblog.timelines import upkeep
from weituan.microblog.timelines.models import FanoutJob
from weituan.microblog.timelines.queries import home_timeline_ids
from weituan.microblog.timelines.tasks import fanout_jobs_prune_task, fanout_sweep_task
from weituan.microblog.timelines.upkeep import fanout_jobs_prune, fanout_sweep

pytestmark = pytest.mark.django_db

TASK_PATH = "weituan.microblog.timelines.tasks.fanout_jobs_prune_task"
SWEEP_PATH = "weituan.microblog.timelines.tasks.fanout_sweep_task"


def _job(days_ago: float, state: str, offset: int = 0) -> int:
    post_id = id_at(timezone.now() - timedelta(days=days_ago)) + offset
    FanoutJob.objects.create(post_id=post_id, author_id=1, state=state)
    return post_id


def test_prune_removes_only_old_finished_jobs() -> None:
    old_done = [_job(5, state, offset) for offset, state in enumerate(("delivered", "skipped", "withdrawn"))]
    old_running = [_job(5, state, 10 + offset) for offset, state in enumerate(("pending", "delivering"))]
    recent_done = _job(1, "delivered")
    assert fanout_jobs_prune() == 3
    assert not FanoutJob.objects.filter(post_id__in=old_done).exists()
    assert sorted(FanoutJob.objects.values_list("post_id", flat=True)) == sorted([*old_running, recent_done])
    assert fanout_jobs_prune() == 0


def test_prune_stops_at_most_and_resumes() -> None:
    ids = [_job(3, "delivered", offset) for offset in range(7)]
    assert fanout_jobs_prune(most=5) == 5
    # The oldest go first; the rest wait for the next run.
    assert sorted(FanoutJob.objects.values_list("post_id", flat=True)) == ids[5:]
    assert fanout_jobs_prune(most=5) == 2
    assert FanoutJob.objects.count() == 0


def test_prune_honours_the_age() -> None:
    kept = _job(0.5, "delivered")
    gone = _job(2.5, "delivered")
    assert fanout_jobs_prune(older_than=timedelta(days=1)) == 1
    assert list(FanoutJob.objects.values_list("post_id", flat=True)) == [kept]
    assert gone != kept


def test_prune_runs_as_a_periodic_task(run_on_commit: Any) -> None:
    assert TASK_PATH in [path for path, _ in settings.PERIODIC_TASKS]
    assert import_string(TASK_PATH) is fanout_jobs_prune_task
    _job(3, "skipped")
    _job(3, "pending", 1)
    with run_on_commit():
        result = fanout_jobs_prune_task.enqueue()
    assert result.return_value == 1
    assert list(FanoutJob.objects.values_list("state", flat=True)) == ["pending"]


def test_sweep_delivers_posts_left_without_a_job(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any, run_on_commit: Any
) -> None:
    reader = people(1)[0]
    follow(reader, merchant)
    home_timeline_ids(reader.pk)
    # Committed, but its enqueue never ran (as when a server stops between the two).
    lost = post_create(author=merchant, text="团购开始")
    comment = comment_create(author=reader, post_id=lost.id, text="好")
    with run_on_commit():
        kept = post_create(author=merchant, text="second")
    assert stored(reader) == [kept.id]
    assert fanout_sweep() == 0  # too young: its task may still be queued
    monkeypatch.setattr(upkeep, "FANOUT_SWEEP_SETTLE", timedelta(seconds=-1))
    assert fanout_sweep() == 1
    assert stored(reader) == [kept.id, lost.id]
    assert FanoutJob.objects.get(post_id=lost.id).state == "delivered"
    assert not FanoutJob.objects.filter(post_id=comment.id).exists()
    assert fanout_sweep() == 0
    assert SWEEP_PATH in [path for path, _ in settings.PERIODIC_TASKS]
    assert import_string(SWEEP_PATH) is fanout_sweep_task


def test_the_sweep_delivers_many_posts_without_a_job_together(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any
) -> None:
    """A worker that fell behind leaves many posts for the sweep: they go out in a few statements, as
    a burst of queued posts does, not a handful each."""
    readers = people(3)
    authors = [merchant, *people(5, "author")]
    for reader in readers:
        for author in authors:
            follow(reader, author)
        home_timeline_ids(reader.pk)
    lost = [post_create(author=authors[i % len(authors)], text=f"团购 {i}").id for i in range(30)]
    monkeypatch.setattr(upkeep, "FANOUT_SWEEP_SETTLE", timedelta(seconds=-1))
    with CaptureQueriesContext(connection) as statements:
        assert fanout_sweep() == 30
    # Beside the timelines' own writes (on the database store an INSERT per post's entries), a few
    # statements for all 30 posts: where each starts, their jobs made, their followers, their jobs ended.
    others = [
        query["sql"][:90]
        for query in statements
        if "timelineentry" not in query["sql"] and "SAVEPOINT" not in query["sql"]
    ]
    assert len(others) <= 8, "\n".join(others)
    for reader in readers:
        assert stored(reader) == sorted(lost, reverse=True)
    assert set(FanoutJob.objects.filter(post_id__in=lost).values_list("state", flat=True)) == {"delivered"}
    assert fanout_sweep() == 0
