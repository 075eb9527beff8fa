"""The newcomer's story, walked through the API by the real Mastodon.py client against a live server.

A newcomer registers with an app token, follows a merchant, sees the merchant's post on the home
timeline, reposts it with a comment, and the merchant sees the repost notification.
"""

from typing import Any

import pytest
from mastodon import Mastodon

from weituan.accounts.models import User

PASSWORD = "correct horse battery"


def _app(live_server: Any) -> tuple[str, str]:
    return Mastodon.create_app(
        "Weituan story", scopes=["read", "write", "follow", "push"], api_base_url=live_server.url
    )


def _client(live_server: Any, app: tuple[str, str], **kwargs: Any) -> Mastodon:
    return Mastodon(
        client_id=app[0],
        client_secret=app[1],
        api_base_url=live_server.url,
        version_check_mode="created",
        **kwargs,
    )


@pytest.mark.django_db(transaction=True)
def test_newcomer_follows_sees_reposts_and_the_merchant_is_notified(live_server: Any, merchant: User) -> None:
    app = _app(live_server)

    shop = _client(live_server, app)
    shop.log_in("meituan_shop", PASSWORD, allow_http=True)

    newcomer = _client(live_server, app)
    newcomer.create_account(
        "xiaoming", "a long passphrase", "xiaoming@example.test", agreement=True, locale="zh-CN"
    )
    me = newcomer.account_verify_credentials()
    assert (me.username, me.followers_count, me.following_count) == ("xiaoming", 0, 0)

    found = newcomer.account_lookup("meituan_shop")
    assert found.verified_merchant is True
    relationship = newcomer.account_follow(found.id)
    assert relationship.following is True

    deal_post = shop.status_post("今日团购：蟹粉小笼包双人套餐，团购价 59 元 #团购#")

    home = newcomer.timeline_home(limit=20)
    assert [status.id for status in home] == [deal_post.id]
    assert home[0].account.username == "meituan_shop"

    repost = newcomer.status_post("好划算，一起拼！", quoted_status_id=deal_post.id)
    assert (repost.weituan.kind, repost.weituan.depth) == ("repost", 1)
    assert int(repost.weituan.parent_id) == int(repost.weituan.root_id) == int(deal_post.id)
    assert repost.quote.quoted_status.id == deal_post.id

    original = shop.status(deal_post.id)
    assert original.reblogs_count == 1

    notifications = shop.notifications()
    # A repost with a comment reaches Mastodon clients as a quote of the merchant's post.
    assert [(n.type, n.account.username) for n in notifications] == [
        ("quote", "xiaoming"),
        ("follow", "xiaoming"),
    ]
    assert notifications[0].status.id == repost.id
    assert shop.notifications_unread_count().count == 2
