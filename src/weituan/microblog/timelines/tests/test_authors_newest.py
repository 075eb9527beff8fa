"""Each account's newest home-timeline post id, and the home read that walks a high-follower author's
posts only when that author may have one the page can reach."""

import importlib
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from weituan.core.testing import make_user
from weituan.microblog.bulk import account_stats_rebuild
from weituan.microblog.models import AccountStats
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_delete
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db

# The statement that walks the followed high-follower authors' posts (`home.authors_posts`).
_WALK = '"microblog_post" p LEFT JOIN "microblog_post" r'


def _newest(user: Any) -> int | None:
    return AccountStats.objects.get(user=user).newest_post_id


def test_every_kind_of_post_moves_the_newest_id_and_nothing_lowers_it(
    shopper: Any, merchant: Any, post_as: Any, repost_as: Any, run_on_commit: Any
) -> None:
    first = post_as(shopper, "第一条")  # the account's first post makes its counters row
    assert _newest(shopper) == first.id
    mentioning = post_as(shopper, f"@{merchant.username} 看这个")  # the path that records mentions
    assert _newest(shopper) == mentioning.id
    theirs = post_as(merchant, "商家的帖子")
    plain = repost_as(shopper, theirs)
    assert _newest(shopper) == plain.id
    quote = repost_as(shopper, theirs, "好价")
    assert _newest(shopper) == quote.id
    with run_on_commit():
        comment_create(author=shopper, post_id=theirs.id, text="评论不进首页")
    assert _newest(shopper) == quote.id  # comments are not home-timeline posts
    with run_on_commit():
        post_delete(actor=shopper, post_id=quote.id)
    assert _newest(shopper) == quote.id  # an upper bound: a deletion leaves it


def test_the_counters_rebuild_and_the_migration_fill_it_from_the_posts(
    shopper: Any, merchant: Any, post_as: Any, repost_as: Any, run_on_commit: Any
) -> None:
    original = post_as(shopper, "原创")
    repost = repost_as(shopper, post_as(merchant, "商家"))
    with run_on_commit():
        comment_create(author=shopper, post_id=original.id, text="自己评论")
    expected = {shopper.pk: repost.id, merchant.pk: AccountStats.objects.get(user=merchant).newest_post_id}
    AccountStats.objects.update(newest_post_id=None)
    account_stats_rebuild()
    assert {user.pk: _newest(user) for user in (shopper, merchant)} == expected
    AccountStats.objects.update(newest_post_id=None)
    fill = importlib.import_module("weituan.microblog.migrations.0012_stats_newest_post").FILL
    with connection.cursor() as cursor:
        cursor.execute(fill)
    assert {user.pk: _newest(user) for user in (shopper, merchant)} == expected


@pytest.fixture
def reader_of_big(backend: str, settings: Any, people: Any, follow: Any) -> tuple[Any, Any, Any]:
    """(reader, big, friend): the reader follows an author above the fan-out threshold and a friend;
    their timeline is built and active, so the friend's posts are delivered to it."""
    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    big, friend = make_user("big_author"), make_user("busy_friend")
    reader, *others = people(3)
    for follower in (reader, *others):
        follow(follower, big)  # above the threshold: merged at read, never delivered
    follow(reader, friend)
    home_timeline_ids(reader.pk)
    return reader, big, friend


@pytest.mark.parametrize("backend", ["db"], indirect=True)
def test_a_home_read_walks_a_big_author_only_when_they_may_reach_the_page(
    backend: str, reader_of_big: tuple[Any, Any, Any], post_as: Any
) -> None:
    reader, big, friend = reader_of_big
    old = post_as(big, "很久以前")
    friends = [post_as(friend, f"新 {index}").id for index in range(40)][::-1]

    with CaptureQueriesContext(connection) as captured:
        page = home_timeline_ids(reader.pk, limit=20)
    assert page == friends[:20]
    assert not [q for q in captured.captured_queries if _WALK in q["sql"]]  # nothing of theirs above

    fresh = post_as(big, "刚刚发的")
    with CaptureQueriesContext(connection) as captured:
        page = home_timeline_ids(reader.pk, limit=20)
    assert page == [fresh.id, *friends[:19]]
    assert len([q for q in captured.captured_queries if _WALK in q["sql"]]) == 1

    # Deeper pages reach the old post, and since_id reads past everything stored.
    older = home_timeline_ids(reader.pk, max_id=friends[-10], limit=20)
    assert older == [*friends[-9:], old.id]
    assert home_timeline_ids(reader.pk, since_id=friends[0], limit=20) == [fresh.id]


@pytest.mark.parametrize("backend", ["db"], indirect=True)
def test_an_author_whose_newest_post_is_not_known_is_walked(
    backend: str, reader_of_big: tuple[Any, Any, Any], post_as: Any
) -> None:
    reader, big, friend = reader_of_big
    friends = [post_as(friend, f"新 {index}").id for index in range(40)][::-1]
    fresh = post_as(big, "刚刚发的")
    AccountStats.objects.filter(user=big).update(newest_post_id=None)  # as rows made before it was kept
    assert home_timeline_ids(reader.pk, limit=20) == [fresh.id, *friends[:19]]
