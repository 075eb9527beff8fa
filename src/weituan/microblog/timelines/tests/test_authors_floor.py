"""Without Redis, a home read's context keeps only the followed big authors who may reach the page: those
whose newest post is at or above the entry the page's stored read ends on. Reads that go on below that
entry (past hidden entries) or rebuild the timeline ask again for all of them."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Mute
from weituan.microblog.timelines.home import PageAsk, page_ask, read_context
from weituan.microblog.timelines.models import TimelineState
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = [pytest.mark.django_db, pytest.mark.parametrize("backend", ["db"], indirect=True)]


@pytest.fixture
def reader_of_big(backend: str, settings: Any, people: Any, follow: Any) -> tuple[Any, Any, Any]:
    """(reader, big, friend): the reader follows an author above the fan-out threshold and a friend,
    and their timeline is built, so the friend's posts are delivered to it and the big author's not."""
    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    big, friend = make_user("big_author"), make_user("busy_friend")
    reader, *others = people(3)
    for follower in (reader, *others):
        follow(follower, big)
    follow(reader, friend)
    home_timeline_ids(reader.pk)
    return reader, big, friend


def test_a_big_author_below_the_pages_floor_is_left_out_of_its_context_only(
    reader_of_big: tuple[Any, Any, Any], post_as: Any
) -> None:
    reader, big, friend = reader_of_big
    old = post_as(big, "很久以前")
    friends = [post_as(friend, f"新 {index}").id for index in range(40)][::-1]

    first = read_context(reader.pk, page_ask(max_id=None, min_id=None, limit=20))
    assert first.merged_authors == () and first.authors_floor == friends[29]  # the 30th entry read
    everyone = read_context(reader.pk)
    assert everyone.merged_authors == (big.pk,) and everyone.authors_floor is None
    assert home_timeline_ids(reader.pk, limit=20) == friends[:20]

    # A page whose read reaches below the old post keeps the author, and shows the post.
    deep = read_context(reader.pk, PageAsk(upper=friends[20], entries=30))
    assert deep.merged_authors == (big.pk,) and deep.authors_floor is None  # fewer entries than read
    assert home_timeline_ids(reader.pk, max_id=friends[20], limit=20) == [*friends[21:], old.id]
    # A page read upwards is not kept to any floor.
    assert read_context(reader.pk, page_ask(max_id=None, min_id=old.id, limit=20)).authors_floor is None

    fresh = post_as(big, "刚刚发的")
    assert read_context(reader.pk, page_ask(max_id=None, min_id=None, limit=20)).merged_authors == (big.pk,)
    assert home_timeline_ids(reader.pk, limit=20) == [fresh.id, *friends[:19]]


def test_reading_on_past_hidden_entries_reaches_a_big_author_left_out_at_first(
    reader_of_big: tuple[Any, Any, Any], post_as: Any
) -> None:
    reader, big, friend = reader_of_big
    old = post_as(big, "很久以前")
    for index in range(40):
        post_as(friend, f"新 {index}")
    # Muted behind the services' back: the friend's delivered entries stay, hidden at read.
    Mute.objects.create(muter=reader, muted=friend)
    assert read_context(reader.pk, page_ask(max_id=None, min_id=None, limit=20)).merged_authors == ()
    assert home_timeline_ids(reader.pk, limit=20) == [old.id]


def test_a_rebuilt_timeline_merges_every_big_author(
    reader_of_big: tuple[Any, Any, Any], post_as: Any
) -> None:
    reader, big, friend = reader_of_big
    old = post_as(big, "很久以前")
    friends = [post_as(friend, f"新 {index}").id for index in range(40)][::-1]
    TimelineState.objects.filter(user_id=reader.pk).update(built_at=None)  # rebuilt on the next read
    assert home_timeline_ids(reader.pk, limit=20) == friends[:20]
    assert home_timeline_ids(reader.pk, max_id=friends[-1], limit=20) == [old.id]
