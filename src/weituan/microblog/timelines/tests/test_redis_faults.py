"""Home timelines kept in Redis when Redis goes away: readers keep their home, read from the posts, and a
Redis that comes back empty has each timeline rebuilt whole on its next read."""

import socket
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.core.worker import make_worker
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import block_create, follow_create, follow_delete
from weituan.microblog.timelines.queries import home_timeline_ids
from weituan.microblog.timelines.tasks import home_timeline_drop_authors_task

pytestmark = pytest.mark.django_db


def test_home_is_read_from_the_posts_while_redis_is_down_and_rebuilt_once_it_is_back(
    own_redis: Any, people: Any, follow: Any, post_as: Any, repost_as: Any, api_as: Any
) -> None:
    reader, author, friend, troll = people(4)
    for followee in (author, friend, troll):
        follow(reader, followee)
    first = post_as(author, "one")
    trolled = post_as(troll, "noise")
    second = post_as(friend, "two")
    forwarded = repost_as(friend, first, "look")
    third = post_as(author, "three")
    block_create(blocker=reader, blocked_id=troll.pk)
    expected = [third.id, forwarded.id, second.id, first.id]
    assert home_timeline_ids(reader.pk) == expected  # built in Redis by this read
    assert trolled.id not in expected

    own_redis.stop()

    assert home_timeline_ids(reader.pk) == expected
    assert home_timeline_ids(reader.pk, max_id=forwarded.id, limit=1) == [second.id]
    assert home_timeline_ids(reader.pk, min_id=second.id, limit=1) == [forwarded.id]
    response = api_as(reader).get("/api/v1/timelines/home")
    assert response.status_code == 200
    assert [int(status["id"]) for status in response.json()] == expected

    own_redis.start()  # back, empty: no timeline is built any more

    assert home_timeline_ids(reader.pk, limit=2) == expected[:2]
    assert home_timeline_ids(reader.pk) == expected


def _run_worker() -> None:
    make_worker(batch=True).run()


@pytest.mark.django_db(transaction=True)  # the worker commits transactions of its own
def test_an_unfollow_whose_timeline_upkeep_met_redis_away_is_done_once_redis_answers_again(
    own_redis: Any, settings: Any, people: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    reader, author = people(2)
    follow_create(follower=reader, followee_id=author.pk)
    home_timeline_ids(reader.pk)
    post = post_create(author=author, text="hello")
    _run_worker()
    assert home_timeline_ids(reader.pk) == [post.id]
    reachable = settings.REDIS_URL
    with socket.socket() as probe:  # a port nothing listens on: Redis unreachable, its data kept
        probe.bind(("127.0.0.1", 0))
        settings.REDIS_URL = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"

    follow_delete(follower=reader, followee_id=author.pk)
    _run_worker()

    settings.REDIS_URL = reachable
    drops = DBTaskResult.objects.filter(task_path=home_timeline_drop_authors_task.module_path)
    retry = drops.get(status="READY")
    assert retry.args_kwargs["kwargs"]["attempt"] == 1
    assert retry.run_after is not None and retry.run_after > timezone.now()
    assert home_timeline_ids(reader.pk) == [post.id]  # not taken out yet
    drops.filter(pk=retry.pk).update(run_after=timezone.now())  # its time has come

    _run_worker()

    assert home_timeline_ids(reader.pk) == []
    assert list(drops.values_list("status", flat=True)) == ["SUCCESSFUL", "SUCCESSFUL"]
