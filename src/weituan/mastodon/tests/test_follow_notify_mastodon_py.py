"""Following with `notify`, through the real Mastodon.py against a live server: the follower is told
(`status`) of the followee's new posts, the relationship says `notifying`, and following again with
`notify=False` stops it."""

from typing import Any

import pytest
from mastodon import Mastodon

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def _people(live_server: Any) -> tuple[Mastodon, Mastodon]:
    return shop_and_newcomer(live_server, "Weituan notify")


def test_a_follow_with_notify_tells_of_new_posts(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    shop_id = shop.account_verify_credentials().id

    relationship = fan.account_follow(shop_id, notify=True)
    assert relationship.following is True
    assert relationship.notifying is True
    assert fan.account_relationships([shop_id])[0].notifying is True

    deal = shop.status_post("今晚 8 点开团")
    other = fan.status_post("我的拼团")
    quote = shop.status_post("这个团不错", quoted_status_id=other.id)
    shop.status_reblog(other.id)  # a plain reblog is not news
    shop.status_post("回复一下", in_reply_to_id=other.id)  # nor a comment

    told = fan.notifications(types=["status"])
    assert [(n.type, n.status.id, n.account.id) for n in told] == [
        ("status", quote.id, shop_id),
        ("status", deal.id, shop_id),
    ]
    assert all(n.type != "status" for n in fan.notifications(exclude_types=["status"]))
    assert shop.notifications(types=["status"]) == []

    relationship = fan.account_follow(shop_id, notify=False)
    assert relationship.following is True
    assert relationship.notifying is False
    shop.status_post("没人通知")
    assert [n.status.id for n in fan.notifications(types=["status"])] == [quote.id, deal.id]
