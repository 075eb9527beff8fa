"""Orders placed after following a share link are credited to that exact link (deal post or repost hop)."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.models import Order
from weituan.deals.services.deals import DealInput, deal_create, deal_publish, deal_tip_check
from weituan.deals.services.wallet import wallet_top_up
from weituan.microblog.services.posts import repost_create
from weituan.tracking.models import OutboxEvent, ShortLink

pytestmark = pytest.mark.django_db


def _deal(merchant: Any, title: str = "鲜肉月饼") -> Any:
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title=title,
            list_price=3000,
            deal_price=1900,
            max_quantity=10,
            tipping_point=2,
            per_user_limit=5,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
        ),
    )
    return deal_publish(deal_id=deal.id, by=merchant)


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _share_code(sharer: Any, post_id: int) -> str:
    """The sharer asks for their link to a post, as the share button does."""
    assert _logged_in(sharer).get(f"/p/{post_id}/share", headers={"HX-Request": "true"}).status_code == 200
    return str(ShortLink.objects.get(sharer_id=sharer.id, post_id=post_id).code)


def _events(order: Order) -> dict[str, dict[str, Any]]:
    rows = OutboxEvent.objects.filter(payload__order_id=str(order.id))
    return {row.event: row.payload for row in rows}


def test_checkout_after_following_a_repost_link_credits_that_hop(merchant: Any, shopper: Any) -> None:
    deal = _deal(merchant)
    hop = repost_create(reposter=shopper, post_id=deal.post_id, comment="一起买")
    code = _share_code(shopper, hop.id)
    link = ShortLink.objects.get(code=code)
    friend = make_user("dazhuang")
    wallet_top_up(user=friend, amount=10_000)
    client = _logged_in(friend)
    landing = client.get(f"/s/{code}")
    assert landing.status_code == 302
    assert client.get(landing["Location"]).status_code == 200
    checkout = client.post(
        f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "1900", "checkout_token": "t-1"}
    )
    assert checkout.status_code == 302
    order = Order.objects.get(buyer=friend)
    assert (order.share_code, order.share_link_id) == (code, link.id)
    buyer = make_user("erniu")
    wallet_top_up(user=buyer, amount=10_000)
    _logged_in(buyer).post(f"/deals/{deal.id}/checkout", {"quantity": "1"})
    assert (Order.objects.get(buyer=buyer).share_code, Order.objects.get(buyer=buyer).share_link_id) == (
        "",
        None,
    )
    deal_tip_check(deal_id=deal.id)
    events = _events(order)
    expected = {
        "link_id": link.id,
        "post_id": hop.id,
        "share_code": code,
        "sharer_id": shopper.id,
        "hop_depth": 1,
    }
    for name in ("order_placed", "order_paid"):
        assert {key: events[name].get(key) for key in expected} == expected, name
    assert events["order_paid"]["revenue"] == 1900
    assert "link_id" not in _events(Order.objects.get(buyer=buyer))["order_placed"]


def test_api_order_carries_the_share_of_the_deal_post(api_as: Any, merchant: Any, shopper: Any) -> None:
    deal = _deal(merchant)
    other = _deal(merchant, title="蛋黄酥")
    code = _share_code(merchant, deal.post_id)
    other_code = _share_code(merchant, other.post_id)
    wallet_top_up(user=shopper, amount=10_000)
    client = api_as(shopper)

    def buy(deal_id: int, share: str | None, key: str) -> Any:
        return client.post(
            f"/api/v1/deals/{deal_id}/orders",
            data=json.dumps({"quantity": 1, "share": share}),
            content_type="application/json",
            headers={"Idempotency-Key": key},
        )

    placed = buy(deal.id, code, "a-1")
    assert placed.status_code == 201, placed.content
    assert placed.json()["share"] == code
    order = Order.objects.get(id=placed.json()["id"])
    link = ShortLink.objects.get(code=code)
    assert (order.share_code, order.share_link_id) == (code, link.id)
    payload = _events(order)["order_placed"]
    assert (payload["link_id"], payload["post_id"], payload["hop_depth"]) == (link.id, deal.post_id, 0)
    # A link to another deal, or a code nobody issued, credits nothing (and does not stop the sale).
    for share, key in ((other_code, "a-2"), ("Nope1234", "a-3")):
        response = buy(deal.id, share, key)
        assert response.status_code == 201
        assert response.json()["share"] is None
        assert Order.objects.get(id=response.json()["id"]).share_link_id is None
    assert buy(deal.id, "<bad>", "a-4").json()["share"] is None
