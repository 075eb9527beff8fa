"""High-follower authors merged at read: the same pages from the Redis index as from the posts table."""

from typing import Any, cast

import pytest
import redis
from django.conf import settings

from weituan.core.redis import get_redis
from weituan.core.testing import make_user
from weituan.microblog.services.posts import post_delete
from weituan.microblog.timelines import authors
from weituan.microblog.timelines.authors import author_key
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db


def _indexed(author: Any) -> list[int]:
    members = cast(list[bytes], get_redis().zrange(author_key(author.pk), 0, -1))
    return sorted((int(member.split(b":")[0]) for member in members if member != b"0"), reverse=True)


@pytest.fixture
def big_author(settings: Any, merchant: Any, people: Any, follow: Any) -> tuple[Any, list[Any]]:
    """The merchant followed by three readers, above a fan-out threshold of two."""
    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    readers = people(3)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    return merchant, readers


def test_new_and_deleted_posts_reach_the_merge(
    backend: str, big_author: Any, post_as: Any, run_on_commit: Any
) -> None:
    merchant, readers = big_author
    first = post_as(merchant, "big 1")
    assert home_timeline_ids(readers[0].pk) == [first.id]
    if backend == "redis":
        assert _indexed(merchant) == [first.id]  # built by that first read
    second = post_as(merchant, "big 2")
    if backend == "redis":
        assert _indexed(merchant) == [second.id, first.id]  # added by the fan-out, not rebuilt
    assert home_timeline_ids(readers[1].pk) == [second.id, first.id]
    with run_on_commit():
        post_delete(actor=merchant, post_id=second.id)
    assert home_timeline_ids(readers[0].pk) == [first.id]
    if backend == "redis":
        assert _indexed(merchant) == [first.id]


def test_lost_index_is_rebuilt_on_read(backend: str, big_author: Any, post_as: Any) -> None:
    merchant, readers = big_author
    posts = [post_as(merchant, f"big {index}") for index in range(3)][::-1]
    assert home_timeline_ids(readers[0].pk) == [post.id for post in posts]
    if backend == "redis":
        get_redis().delete(author_key(merchant.pk))
        assert _indexed(merchant) == []
    assert home_timeline_ids(readers[2].pk) == [post.id for post in posts]
    if backend == "redis":
        assert _indexed(merchant) == [post.id for post in posts]


def test_pages_below_a_full_index_are_exact(
    backend: str, big_author: Any, post_as: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(authors, "AUTHOR_INDEX_CAP", 3)
    merchant, readers = big_author
    posts = [post_as(merchant, f"big {index}") for index in range(7)][::-1]
    ids = [post.id for post in posts]
    pages = []
    page = home_timeline_ids(readers[0].pk, limit=2)
    while page:
        pages.append(page)
        page = home_timeline_ids(readers[0].pk, max_id=page[-1], limit=2)
    assert pages == [ids[0:2], ids[2:4], ids[4:6], ids[6:7]]
    if backend == "redis":
        assert _indexed(merchant) == ids[:3]  # the cap holds, deeper pages came from the posts table
    assert home_timeline_ids(readers[0].pk, min_id=ids[5], limit=2) == [ids[3], ids[4]]
    assert home_timeline_ids(readers[0].pk, since_id=ids[2], limit=5) == [ids[0], ids[1]]


def test_a_read_with_big_authors_after_the_scripts_were_flushed(
    backend: str, big_author: Any, follow: Any, post_as: Any
) -> None:
    merchant, readers = big_author
    friend = make_user("small_friend")
    follow(readers[0], friend)
    ordinary = post_as(friend, "small author")  # delivered into the reader's stored timeline
    big = post_as(merchant, "big author")  # merged in at read
    assert home_timeline_ids(readers[0].pk) == [big.id, ordinary.id]
    if backend == "redis":
        # The timeline and the big authors' index are read in one round trip, by the scripts' hashes: a
        # server that lost them (a restart, a flush) gets them loaded again.
        get_redis().script_flush()
    assert home_timeline_ids(readers[0].pk) == [big.id, ordinary.id]


def test_big_authors_are_read_only_as_deep_as_the_page_reaches(
    backend: str, big_author: Any, follow: Any, post_as: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(authors, "AUTHOR_INDEX_CAP", 4)
    merchant, readers = big_author
    friend = make_user("busy_friend")
    follow(readers[0], friend)
    posted = [post_as(merchant, f"old big {index}") for index in range(6)]  # more than the index keeps
    for index in range(45):  # the stored timeline fills, a big post between every two of its own
        posted.append(post_as(merchant if index % 3 == 0 else friend, f"new {index}"))
    expected = sorted((post.id for post in posted), reverse=True)
    pages = []
    page = home_timeline_ids(readers[0].pk, limit=3)
    while page:
        pages.append(page)
        page = home_timeline_ids(readers[0].pk, max_id=page[-1], limit=3)
    assert [post_id for page in pages for post_id in page] == expected
    assert all(len(page) == 3 for page in pages[:-1])
    if backend == "redis":
        assert _indexed(merchant) == [post.id for post in posted[::-1] if post.author_id == merchant.pk][:4]


def test_a_read_with_big_authors_after_the_store_dropped_its_connection(
    backend: str, big_author: Any, follow: Any, post_as: Any
) -> None:
    merchant, readers = big_author
    friend = make_user("small_friend")
    follow(readers[0], friend)
    ordinary = post_as(friend, "small author")
    big = post_as(merchant, "big author")
    assert home_timeline_ids(readers[0].pk) == [big.id, ordinary.id]
    if backend == "redis":
        # The pooled connection the read used is closed by the server (a restart, a timeout): the
        # read is sent again on a fresh one.
        pool = get_redis().connection_pool
        pooled = pool.get_connection()
        pooled.send_command("CLIENT", "ID")
        client_id = pooled.read_response()
        pool.release(pooled)
        redis.Redis.from_url(str(settings.REDIS_URL)).client_kill_filter(_id=client_id)
    assert home_timeline_ids(readers[0].pk) == [big.id, ordinary.id]
