"""Home timelines kept in Redis when Redis goes away: readers keep their home, read from the posts, and a
Redis that comes back empty has each timeline rebuilt whole on its next read."""

from typing import Any

import pytest

from weituan.microblog.services.relations import block_create
from weituan.microblog.timelines.queries import home_timeline_ids

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
