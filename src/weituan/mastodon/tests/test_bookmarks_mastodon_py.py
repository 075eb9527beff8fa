"""Bookmarks (收藏) through the real Mastodon.py against a live server: keep and drop a status, the list
of kept statuses paged by the bookmark, and the `bookmarked` flag wherever a status is shown to its
reader (one status, the home timeline, a reblog's original)."""

from typing import Any

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer
from weituan.microblog.models import Bookmark, Notification

pytestmark = pytest.mark.django_db(transaction=True)


def _ids(statuses: Any) -> list[Any]:
    return [status.id for status in statuses]


def test_bookmarks_are_the_kept_statuses_newest_bookmark_first(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan bookmarks")
    first, second, third = (shop.status_post(f"好价 {n}") for n in range(3))
    notified = Notification.objects.count()
    for status in (second, first, third):  # kept out of posting order: the bookmark's moment counts
        assert fan.status_bookmark(status.id).bookmarked is True
    assert fan.status_bookmark(third.id).bookmarked is True  # again: still kept, once
    assert Bookmark.objects.count() == 3
    assert Notification.objects.count() == notified  # nobody is told of a bookmark
    assert _ids(fan.bookmarks()) == [third.id, first.id, second.id]
    assert all(status.bookmarked for status in fan.bookmarks())

    page = fan.bookmarks(limit=2)
    assert _ids(page) == [third.id, first.id]
    older = fan.fetch_next(page)
    assert _ids(older) == [second.id]
    assert _ids(fan.fetch_previous(older)) == [third.id, first.id]

    # The flag is the reader's own: the author sees it unset, the reader set.
    assert fan.status(first.id).bookmarked is True
    assert shop.status(first.id).bookmarked is False
    assert shop.bookmarks() == []

    assert fan.status_unbookmark(third.id).bookmarked is False
    assert fan.status_unbookmark(third.id).bookmarked is False  # again: nothing to drop, no error
    assert _ids(fan.bookmarks()) == [first.id, second.id]
    shop.status_delete(first.id)
    assert _ids(fan.bookmarks()) == [second.id]


def test_the_home_timeline_and_a_reblog_show_the_readers_bookmarks(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan bookmarks")
    fan.account_follow(shop.account_verify_credentials().id)
    kept, other = shop.status_post("收藏这个"), shop.status_post("不收藏")
    boost = shop.status_reblog(kept.id)
    fan.status_bookmark(kept.id)
    for _ in range(2):  # the second read is served from the statuses kept for every reader
        home = {status.id: status for status in fan.timeline_home()}
        assert home[kept.id].bookmarked is True
        assert home[other.id].bookmarked is False
        assert home[boost.id].reblog.bookmarked is True
        assert home[boost.id].bookmarked is False
    # Another reader of the same statuses keeps nothing.
    assert not any(status.bookmarked for status in shop.timeline_home())


def test_a_status_the_reader_may_not_see_cannot_be_kept(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan bookmarks")
    hidden = shop.status_post("仅粉丝", visibility="private")
    with pytest.raises(MastodonNotFoundError):
        fan.status_bookmark(hidden.id)
    with pytest.raises(MastodonNotFoundError):
        fan.status_bookmark("12345")
    gone = shop.status_post("删掉了")
    shop.status_delete(gone.id)
    with pytest.raises(MastodonNotFoundError):
        fan.status_bookmark(gone.id)
    shop.account_block(fan.account_verify_credentials().id)
    blocked = shop.status_post("拉黑之后")
    with pytest.raises(MastodonAPIError) as refused:
        fan.status_bookmark(blocked.id)
    assert refused.value.args[1] == 403
    assert not Bookmark.objects.exists()
