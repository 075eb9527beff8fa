"""The real Mastodon.py client against a live server: follow, timelines with Link paging, block and mute."""

from typing import Any

import pytest
from mastodon import Mastodon

from weituan.accounts.models import User
from weituan.microblog.services.posts import post_create, repost_create

PASSWORD = "correct horse battery"


def logged_in(live_server: Any, email: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "Weituan relations test", scopes=["read", "write", "follow"], api_base_url=live_server.url
    )
    api = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=live_server.url,
        version_check_mode="none",
    )
    api.log_in(email, PASSWORD, allow_http=True, scopes=["read", "write", "follow"])
    return api


@pytest.mark.django_db(transaction=True)
def test_follow_read_page_block_and_mute(
    live_server: Any, shopper: User, merchant: User, outsider: User
) -> None:
    api = logged_in(live_server, "alice@example.test")
    relationship = api.account_follow(merchant.pk)
    assert (int(relationship.id), relationship.following) == (merchant.pk, True)
    assert api.timeline_home() == []

    posts = [post_create(author=merchant, text=f"#团购# 第{index}单") for index in range(5)]
    forward = repost_create(reposter=outsider, post_id=posts[0].id, comment="好价")
    newest_first = [post.id for post in reversed(posts)]

    first = api.timeline_home(limit=2)
    assert [int(status.id) for status in first] == newest_first[:2]
    second = api.fetch_next(first)
    assert second is not None
    assert [int(status.id) for status in second] == newest_first[2:4]
    back = api.fetch_previous(second)
    assert back is not None
    assert [int(status.id) for status in back] == newest_first[:2]

    assert [int(s.id) for s in api.account_statuses(merchant.pk, limit=3)] == newest_first[:3]
    assert [int(s.id) for s in api.timeline_hashtag("团购", limit=1)] == newest_first[:1]
    assert int(api.timeline_public(limit=1)[0].id) == forward.id
    assert [int(a.id) for a in api.account_followers(merchant.pk)] == [shopper.pk]
    assert [int(a.id) for a in api.account_following(shopper.pk)] == [merchant.pk]
    (seen,) = api.account_relationships([merchant.pk])
    assert (seen.following, seen.followed_by, seen.blocking) == (True, False, False)

    api.account_follow(outsider.pk)
    assert int(api.timeline_home(limit=1)[0].id) == forward.id
    muted = api.account_mute(outsider.pk)
    assert muted.muting is True
    assert [int(a.id) for a in api.mutes()] == [outsider.pk]
    assert int(api.timeline_home(limit=1)[0].id) == newest_first[0]
    api.account_unmute(outsider.pk)

    blocked = api.account_block(merchant.pk)
    assert (blocked.blocking, blocked.following) == (True, False)
    assert [int(a.id) for a in api.blocks()] == [merchant.pk]
    assert [int(s.id) for s in api.timeline_home()] == []
    assert api.account_unblock(merchant.pk).blocking is False
