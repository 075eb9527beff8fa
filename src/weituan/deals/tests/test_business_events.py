"""The business events deals send to tracking's outbox: team started and joined, order refunded, voucher
redeemed, each written with the change it records and carrying its deal, order, money and user."""

from typing import Any

import pytest

from weituan.core.errors import Conflict
from weituan.core.testing import make_user
from weituan.deals.errors import NotYourDeal
from weituan.deals.models import OrderState
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.refunds import order_refund
from weituan.deals.services.vouchers import voucher_redeem
from weituan.tracking import facade as tracking
from weituan.tracking.models import OutboxEvent
from weituan.tracking.store import analytics_store

pytestmark = pytest.mark.django_db

BUSINESS = ("team_start", "team_join", "order_refunded", "voucher_redeemed")


def business_events(**filters: Any) -> list[tuple[str, int | None, str, dict[str, Any]]]:
    rows = OutboxEvent.objects.filter(event__in=BUSINESS, **filters).order_by("id")
    return [(row.event, row.user_id, row.visitor_id, row.payload) for row in rows]


def paid_order(deal: Any, buyer: Any, fund: Any, quantity: int = 1) -> Any:
    fund(buyer)
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=quantity)
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    return order


def test_starting_and_joining_a_team_are_recorded_for_each_member(make_live_deal, fund):
    deal = make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)
    leader, member = make_user("team_leader"), make_user("team_member")
    fund(leader)
    fund(member)
    first = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start")
    team_id = int(first.team_id or 0)
    assert business_events() == [
        ("team_start", leader.id, f"u:{leader.id}", {"team_id": team_id, "deal_id": deal.id}),
    ]
    order_place(deal_id=deal.id, buyer=member, quantity=1, team=team_id)
    assert business_events(user_id=member.id) == [
        ("team_join", member.id, f"u:{member.id}", {"team_id": team_id, "deal_id": deal.id}),
    ]
    # The orders themselves are recorded too, with the team they belong to and the team price.
    placed = OutboxEvent.objects.get(event="order_placed", user_id=member.id).payload
    assert (placed["team_id"], placed["revenue"], placed["deal_id"]) == (team_id, 5_000, deal.id)
    # A solo order is in no team: it neither starts nor joins one.
    solo = make_user("solo_buyer")
    fund(solo)
    order_place(deal_id=deal.id, buyer=solo, quantity=1)
    assert [event for event, *_ in business_events()] == ["team_start", "team_join"]


def test_a_refund_is_recorded_per_voucher_as_negative_revenue(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1)
    order = paid_order(deal, shopper, fund, quantity=2)
    assert business_events() == []
    order_refund(order_id=order.id, by=shopper)
    refund = {
        "quantity": 2,
        "team_id": None,
        "gateway": "wallet",
        "order_id": str(order.id),
        "revenue": -9_900,
        "currency": "CNY",
        "deal_id": deal.id,
    }
    assert business_events() == [
        ("order_refunded", shopper.id, f"u:{shopper.id}", refund),
        ("order_refunded", shopper.id, f"u:{shopper.id}", refund),
    ]
    # Moved to the analytics store, the two refunds take back exactly what the order paid.
    tracking.events_flush()
    ids = list(OutboxEvent.objects.filter(event="order_refunded").values_list("event_id", flat=True))
    rows = analytics_store().query(
        "SELECT order_id, deal_id, user_id, revenue, currency FROM events WHERE event_id IN {ids:Array(String)}",
        {"ids": ids},
    )
    assert (
        rows
        == [
            {
                "order_id": str(order.id),
                "deal_id": deal.id,
                "user_id": shopper.id,
                "revenue": -9_900,
                "currency": "CNY",
            }
        ]
        * 2
    )
    paid = OutboxEvent.objects.get(event="order_paid", user_id=shopper.id).payload
    assert paid["revenue"] + sum(row["revenue"] for row in rows) == 0


def test_a_redeemed_voucher_is_recorded_once_and_a_refused_redemption_not_at_all(
    shopper, merchant, make_live_deal, fund
):
    deal = make_live_deal(tipping_point=1)
    order = paid_order(deal, shopper, fund, quantity=2)
    first, second = order.vouchers.order_by("id").values_list("code", flat=True)
    rival = make_user("rival_shop", merchant=True)
    with pytest.raises(NotYourDeal):
        voucher_redeem(code=first, by=rival)
    assert business_events() == []
    voucher_redeem(code=first, by=merchant)
    with pytest.raises(Conflict):
        voucher_redeem(code=first, by=merchant)
    # The event is the holder's (the shopper's), not the merchant's who typed the code.
    assert business_events() == [
        ("voucher_redeemed", shopper.id, f"u:{shopper.id}", {"order_id": str(order.id), "deal_id": deal.id}),
    ]
    voucher_redeem(code=second, by=merchant)
    assert [event for event, *_ in business_events()] == ["voucher_redeemed", "voucher_redeemed"]
