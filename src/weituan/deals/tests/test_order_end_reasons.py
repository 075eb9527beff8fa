"""Why an order ended without being paid (`end_reason`): kept by the move that ends it, shown in the order's
JSON and on My orders in the buyer's language, and filled for orders that ended before it was kept. A
capture the provider refused (`payment_declined`, "支付失败") never reads like the buyer's own cancel
(`cancelled`, "已取消")."""

import importlib
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.errors import PaymentDeclined
from weituan.deals.models import Order, OrderEndReason, OrderState
from weituan.deals.services import orders
from weituan.deals.services.deals import deal_end, deal_tip_check
from weituan.deals.services.holds import order_cancel, order_reservation_expire
from weituan.deals.services.orders import order_place
from weituan.deals.services.teams import team_expire, team_switch_solo
from weituan.deals.tests.test_hosted_gateway import _webhook

pytestmark = pytest.mark.django_db


def _ended(order: Order) -> tuple[str, str]:
    state, reason = Order.objects.filter(id=order.id).values_list("state", "end_reason").get()
    return state, reason


def _reserved(monkeypatch: Any, deal: Any, buyer: Any) -> Order:
    """A card order whose process stopped before the provider held its payment: pending."""
    monkeypatch.setattr(orders, "order_authorize_remote", lambda *, order_id: False)
    try:
        order = order_place(deal_id=deal.id, buyer=buyer, quantity=1, gateway="card")
    finally:
        monkeypatch.undo()
    assert order.state == OrderState.PENDING
    return order


def orders_ended_every_way(
    provider: Any, make_live_deal: Any, fund: Any, monkeypatch: Any
) -> dict[str, Order]:
    """One order ended each way an order ends unpaid, and one paid, by name of what ended it."""
    fake, _ = provider
    made: dict[str, Order] = {}
    # The buyer withdraws a held order, and a reservation not paid yet.
    waiting = make_live_deal(title="等成团", tipping_point=5)
    fund(cancelling := make_user("cancelling"))
    made["cancelled"] = order_place(deal_id=waiting.id, buyer=cancelling, quantity=1)
    order_cancel(order_id=made["cancelled"].id, by=cancelling)
    made["cancelled_reservation"] = _reserved(monkeypatch, waiting, reserving := make_user("reserving"))
    order_cancel(order_id=made["cancelled_reservation"].id, by=reserving)
    # A reservation whose time runs out.
    made["reservation_expired"] = _reserved(monkeypatch, waiting, make_user("too_slow"))
    Order.objects.filter(id=made["reservation_expired"].id).update(
        reserve_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert order_reservation_expire(order_id=made["reservation_expired"].id) is True
    # The provider refuses the hold at checkout, and another buyer's capture once the deal tips.
    refused_hold = make_user("refused_hold")
    fake.decline_customers.add(str(refused_hold.id))
    with pytest.raises(PaymentDeclined):
        order_place(deal_id=waiting.id, buyer=refused_hold, quantity=1, gateway="card")
    made["declined_hold"] = Order.objects.get(buyer=refused_hold)
    tipping = make_live_deal(title="一人成团", tipping_point=1)
    made["paid"] = order_place(deal_id=tipping.id, buyer=make_user("paying"), quantity=1, gateway="card")
    made["payment_declined"] = order_place(
        deal_id=tipping.id, buyer=(declined := make_user("declined")), quantity=1, gateway="card"
    )
    fake.refusing_captures.add(str(declined.id))
    assert deal_tip_check(deal_id=tipping.id) is True
    # A deal that never tips, a team that never fills, a member who switches to the solo price.
    failing = make_live_deal(title="没成团", tipping_point=5)
    fund(stranded := make_user("stranded"))
    made["deal_failed"] = order_place(deal_id=failing.id, buyer=stranded, quantity=1)
    teams = make_live_deal(title="拼团", tipping_point=5, team_price=5_000, team_size=3)
    fund(leader := make_user("leader"))
    made["team_expired"] = order_place(deal_id=teams.id, buyer=leader, quantity=1, team="start")
    team_id = made["team_expired"].team_id
    assert team_id is not None
    assert team_expire(team_id=team_id, force=True) == 1
    fund(switching := make_user("switching"))
    made["switched_solo"] = order_place(deal_id=teams.id, buyer=switching, quantity=1, team="start")
    made["solo"] = team_switch_solo(order_id=made["switched_solo"].id, by=switching)
    assert deal_end(deal_id=failing.id, now=timezone.now() + timedelta(days=3)) == "failed"
    return made


EXPECTED = {
    "cancelled": (OrderState.VOIDED, OrderEndReason.CANCELLED),
    "cancelled_reservation": (OrderState.EXPIRED, OrderEndReason.CANCELLED),
    "reservation_expired": (OrderState.EXPIRED, OrderEndReason.RESERVATION_EXPIRED),
    "declined_hold": (OrderState.EXPIRED, OrderEndReason.PAYMENT_DECLINED),
    "payment_declined": (OrderState.VOIDED, OrderEndReason.PAYMENT_DECLINED),
    "deal_failed": (OrderState.VOIDED, OrderEndReason.DEAL_FAILED),
    "team_expired": (OrderState.VOIDED, OrderEndReason.TEAM_EXPIRED),
    "switched_solo": (OrderState.VOIDED, OrderEndReason.SWITCHED_SOLO),
    "paid": (OrderState.CAPTURED, ""),
    "solo": (OrderState.AUTHORIZED, ""),
}


def test_each_way_an_order_ends_unpaid_is_kept_as_its_reason(provider, make_live_deal, fund, monkeypatch):
    made = orders_ended_every_way(provider, make_live_deal, fund, monkeypatch)
    assert {name: _ended(order) for name, order in made.items()} == EXPECTED


def test_a_voiding_order_keeps_its_reason_when_the_void_is_recorded(provider, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1)
    declined = make_user("declined")
    order = order_place(deal_id=deal.id, buyer=declined, quantity=1, gateway="card")
    fake.refusing_captures.add(str(declined.id))
    # The void that follows the refused capture cannot reach the provider: the order stays voiding.
    fake.while_handling["void"] = lambda: setattr(fake, "outage", 503)
    assert deal_tip_check(deal_id=deal.id) is True
    assert _ended(order) == (OrderState.VOIDING, OrderEndReason.PAYMENT_DECLINED)
    # The buyer's cancel of the voiding order changes nothing of why it ended.
    fake.outage = None
    order_cancel(order_id=order.id, by=declined)
    assert _ended(order) == (OrderState.VOIDED, OrderEndReason.PAYMENT_DECLINED)


def test_the_order_json_says_why_it_ended(provider, make_live_deal, fund, api_as, monkeypatch):
    made = orders_ended_every_way(provider, make_live_deal, fund, monkeypatch)
    for name, (_state, reason) in EXPECTED.items():
        order = made[name]
        body = api_as(order.buyer).get(f"/api/v1/orders/{order.id}").json()
        assert (body["state"], body["end_reason"]) == (_state, reason or None), name


def test_a_buyers_cancel_through_the_api_answers_cancelled(make_live_deal, fund, api_as, shopper):
    deal = make_live_deal(tipping_point=5)
    fund(shopper)
    api = api_as(shopper)
    placed = api.post(f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, content_type="application/json")
    assert (placed.status_code, placed.json()["end_reason"]) == (201, None)
    order_cancel(order_id=placed.json()["id"], by=shopper)
    body = api.get(f"/api/v1/orders/{placed.json()['id']}").json()
    assert (body["state"], body["end_reason"]) == ("voided", "cancelled")


def test_the_openapi_document_names_every_end_reason(api_as, shopper):
    schemas = api_as(shopper).get("/api/v1/openapi.json").json()["components"]["schemas"]
    field = schemas["OrderOut"]["properties"]["end_reason"]
    assert field["enum"] == [
        "cancelled", "payment_declined", "payment_released", "deal_failed", "team_expired",
        "reservation_expired", "switched_solo", None,
    ]  # fmt: skip
    assert {"type": "null"} in field["anyOf"]
    assert "end_reason" not in schemas["OrderOut"].get("required", [])
    # In English whatever the request's language, each value with what it means.
    assert "`payment_declined`: Payment declined" in field["description"]
    assert "`cancelled`: Cancelled" in field["description"]


def test_my_orders_tells_a_declined_payment_from_a_cancel(provider, make_live_deal, fund, client):
    fake, _ = provider
    buyer = make_user("both_ways")
    fund(buyer)
    waiting = make_live_deal(title="等成团", tipping_point=5)
    cancelled = order_place(deal_id=waiting.id, buyer=buyer, quantity=1)
    order_cancel(order_id=cancelled.id, by=buyer)
    tipping = make_live_deal(title="一人成团", tipping_point=1)
    declined = order_place(deal_id=tipping.id, buyer=buyer, quantity=1, gateway="card")
    fake.refusing_captures.add(str(buyer.id))
    deal_tip_check(deal_id=tipping.id)
    assert (_ended(cancelled), _ended(declined)) == (
        (OrderState.VOIDED, OrderEndReason.CANCELLED),
        (OrderState.VOIDED, OrderEndReason.PAYMENT_DECLINED),
    )
    client.force_login(buyer)
    for language, failed, withdrawn in (
        ("zh-hans", "支付失败", "已取消"),
        ("en", "Payment declined", "Cancelled"),
    ):
        page = client.get(reverse("deals:my_orders"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert page.count(f'data-end-reason="payment_declined">{failed}</span>') == 1, language
        assert page.count(f'data-end-reason="cancelled">{withdrawn}</span>') == 1, language
        assert ">voided<" not in page


def test_the_migration_fills_the_reason_of_orders_that_ended_before_it(
    provider, make_live_deal, fund, monkeypatch
):
    made = orders_ended_every_way(provider, make_live_deal, fund, monkeypatch)
    # As the rows stood before the column: no reason kept.
    Order.objects.update(end_reason="")
    migration = importlib.import_module("weituan.deals.migrations.0013_order_end_reason")
    migration.fill_end_reasons(apps, None)
    filled = {name: _ended(order) for name, order in made.items()}
    # What the rows still show tells every reason apart, except a cancelled reservation from one whose
    # time ran out.
    assert filled == {**EXPECTED, "cancelled_reservation": (OrderState.EXPIRED, "reservation_expired"),
                      "declined_hold": (OrderState.EXPIRED, "reservation_expired")}  # fmt: skip
    # Run again, it changes nothing.
    migration.fill_end_reasons(apps, None)
    assert {name: _ended(order) for name, order in made.items()} == filled


def test_the_providers_webhook_ends_orders_released_or_declined(provider, make_live_deal, monkeypatch):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=5)
    held = order_place(deal_id=deal.id, buyer=make_user("held"), quantity=1, gateway="card")
    reserved = _reserved(monkeypatch, deal, make_user("reserved"))
    for event_id, kind, order in (
        ("evt_1", "authorization.voided", held),
        ("evt_2", "authorization.failed", reserved),
    ):
        data: dict[str, Any] = {
            "authorization": order.payment_ref or "auth_x",
            "reference": f"order:{order.id}:authorize",
        }
        answer = _webhook(gateway, {"id": event_id, "type": kind, "data": data})
        assert answer.status_code == 200, answer.content
    assert _ended(held) == (OrderState.VOIDED, OrderEndReason.PAYMENT_RELEASED)
    assert _ended(reserved) == (OrderState.EXPIRED, OrderEndReason.PAYMENT_DECLINED)
    assert fake.holds[held.payment_ref]["status"] == "voided"
