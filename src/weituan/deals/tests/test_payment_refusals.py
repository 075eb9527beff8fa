"""A hosted provider's final refusals (a 4xx answer, not a provider that cannot be reached), against the
fake provider on 127.0.0.1. A capture it refuses fails the order: released as a cancelled hold is
(voiding, then voided, the provider asked under the order's void key), its unit, quota and place among
the deal's buyers given back, its buyer told (`order_failed`), no voucher issued and its money out of
held. A void it refuses is recorded: the hold is unknown to it, or no longer held. Neither is asked
again; a capture or a void the provider could not be reached for still is."""

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.errors import PaymentDeclined
from weituan.deals.models import (
    Deal,
    DealState,
    Order,
    OrderState,
    Posting,
    Team,
    TeamState,
    UserDealQuota,
    Voucher,
)
from weituan.deals.queries import deal_buyers_counted, ledger_report
from weituan.deals.services import ledger
from weituan.deals.services.deals import deal_end, deal_tip_check, deals_sweep
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.tracking.models import OutboxEvent

pytestmark = pytest.mark.django_db

PRICE = 9_900  # the deals' price (conftest.live_deal)


def _state(order: Order) -> str:
    return str(Order.objects.filter(id=order.id).values_list("state", flat=True).get())


def _held(order: Order) -> int:
    return ledger.balance_of(ledger.held_account(order.buyer_id, "CNY"))


def _requests(fake: Any, order: Order, action: str) -> list[str]:
    """The keys of the requests of that kind about the order's hold that reached the provider."""
    path = f"/authorizations/{order.payment_ref}/{action}"
    return [key for asked, key, _ in fake.requests if asked == path]


def _postings(order: Order) -> list[str]:
    return list(Posting.objects.filter(order=order).order_by("id").values_list("kind", flat=True))


def _failed_events() -> list[tuple[int | None, dict[str, Any]]]:
    return [
        (row.user_id, row.payload) for row in OutboxEvent.objects.filter(event="order_failed").order_by("id")
    ]


def _sold_and_takers(deal: Deal) -> tuple[int, int]:
    deal.refresh_from_db()
    return deal.sold, deal.takers


def test_a_capture_the_provider_refuses_fails_the_order_and_gives_everything_back(provider, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=2, per_user_limit=2)
    paying = order_place(deal_id=deal.id, buyer=make_user("paying"), quantity=1, gateway="card")
    refused = order_place(deal_id=deal.id, buyer=make_user("refused"), quantity=2, gateway="card")
    assert _sold_and_takers(deal) == (3, 2)
    # The provider is away when the deal tips: both holds stay owed their capture, asked again later.
    fake.outage = 503
    assert deal_tip_check(deal_id=deal.id) is True
    assert (_state(paying), _state(refused)) == (OrderState.AUTHORIZED, OrderState.AUTHORIZED)
    assert deals_sweep()["settled"] == 1
    assert _state(refused) == OrderState.AUTHORIZED

    # Back, it captures one and refuses the other's capture for good.
    fake.outage = None
    fake.refusing_captures.add(str(refused.buyer_id))
    assert deals_sweep()["settled"] == 1
    assert (_state(paying), _state(refused)) == (OrderState.CAPTURED, OrderState.VOIDED)
    # The failed order's hold is released at the provider, under the order's void key.
    assert fake.holds[refused.payment_ref]["status"] == "voided"
    assert [(path, key) for path, key in fake.calls if path.endswith("/void")] == [
        (f"/authorizations/{refused.payment_ref}/void", f"order:{refused.id}:void")
    ]
    # It gave back its units, its quota and its place among the deal's buyers, and got no voucher.
    deal.refresh_from_db()
    assert (deal.state, deal.sold, deal.takers) == (DealState.TIPPED, 1, 1)
    assert deal_buyers_counted(deal_id=deal.id) == 1
    assert UserDealQuota.objects.get(deal=deal, user_id=refused.buyer_id).own == 0
    assert not Voucher.objects.filter(order=refused).exists()
    assert Voucher.objects.filter(order=paying).count() == 1
    # Its money left held, back to where it came from: the provider's account keeps only the paid order.
    assert _postings(refused) == ["authorize", "void"]
    assert _held(refused) == 0
    assert ledger.balance_of(ledger.gateway_account("card", "CNY")) == -PRICE
    # Its buyer is told, once; no payment is recorded for it.
    assert _failed_events() == [
        (
            refused.buyer_id,
            {
                "quantity": 2, "team_id": None, "gateway": "card", "order_id": str(refused.id),
                "currency": "CNY", "deal_id": deal.id,
            },
        )
    ]  # fmt: skip
    assert not OutboxEvent.objects.filter(event="order_paid", user_id=refused.buyer_id).exists()

    # Nothing is owed any more: no sweep asks the provider again, and the deal closes holding nothing.
    assert deals_sweep()["settled"] == 0
    # Asked at the tip and by the sweep while the provider was away, then refused: one key throughout.
    assert _requests(fake, refused, "capture") == [f"order:{refused.id}:capture"] * 3
    assert _requests(fake, refused, "void") == [f"order:{refused.id}:void"]
    assert deal_end(deal_id=deal.id, now=timezone.now() + timedelta(days=3)) == DealState.CLOSED
    assert len(_failed_events()) == 1
    report = ledger_report()
    assert report.ok, report.problems()
    call_command("ledger", "check")  # `weituan ledger check` passes: no hold left open on the closed deal


def test_a_closed_deal_settling_a_refused_capture_holds_nothing_after(provider, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1)
    order = order_place(deal_id=deal.id, buyer=make_user("latecard"), quantity=1, gateway="card")
    # The window ends before the tip check ran; the provider refuses the capture its end owes.
    fake.refusing_captures.add(str(order.buyer_id))
    assert deal_end(deal_id=deal.id, now=timezone.now() + timedelta(days=3)) == DealState.CLOSED
    assert _state(order) == OrderState.VOIDED
    assert fake.holds[order.payment_ref]["status"] == "voided"
    assert _sold_and_takers(deal) == (0, 0)
    assert _postings(order) == ["authorize", "void"]
    assert [user_id for user_id, _ in _failed_events()] == [order.buyer_id]
    assert ledger_report().open_holds_on_ended_deals == []
    call_command("ledger", "check")
    assert deals_sweep(now=timezone.now() + timedelta(days=4))["settled"] == 0
    assert len(_requests(fake, order, "capture")) == 1


def test_a_card_order_on_a_tipped_deal_whose_capture_is_refused_fails_at_checkout(
    provider, api_as, make_live_deal, fund
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1)
    first = make_user("first")
    fund(first)
    order_place(deal_id=deal.id, buyer=first, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    buyer = make_user("declined_at_once")
    fake.refusing_captures.add(str(buyer.id))
    answer = api_as(buyer).post(
        f"/api/v1/deals/{deal.id}/orders",
        data=json.dumps({"quantity": 1, "gateway": "card"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="buy-1",
    )
    assert answer.status_code == 402, answer.content
    assert answer.json() == {"error": "the card issuer declined the capture", "code": "payment_declined"}
    order = Order.objects.get(buyer=buyer)
    assert order.state == OrderState.VOIDED
    assert fake.holds[order.payment_ref]["status"] == "voided"
    assert _sold_and_takers(deal) == (1, 1)
    assert _postings(order) == ["authorize", "void"]
    assert not Voucher.objects.filter(order=order).exists()
    assert [user_id for user_id, _ in _failed_events()] == [buyer.id]
    assert ledger_report().ok


@pytest.mark.parametrize("the_hold", ["lapsed", "unknown"])
def test_a_capture_and_a_void_both_refused_end_the_order_voided(provider, make_live_deal, the_hold):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, team_price=5_000, team_size=2)
    leader = order_place(deal_id=deal.id, buyer=make_user("lead"), quantity=1, team="start", gateway="card")
    mate = order_place(
        deal_id=deal.id, buyer=make_user("mate"), quantity=1, team=leader.team_id, gateway="card"
    )
    # The mate's authorization lapsed at the provider (or it knows none): capture and void are refused.
    if the_hold == "lapsed":
        fake.holds[mate.payment_ref]["status"] = "expired"
    else:
        del fake.holds[mate.payment_ref]
    assert deal_tip_check(deal_id=deal.id) is True
    assert (_state(leader), _state(mate)) == (OrderState.CAPTURED, OrderState.VOIDED)
    assert _postings(mate) == ["authorize", "void"]
    assert _held(mate) == 0
    # The team had filled: it stays filled, the deal takes the mate's unit back.
    assert Team.objects.get(orders=leader).state == TeamState.FILLED
    assert _sold_and_takers(deal) == (1, 1)
    assert [user_id for user_id, _ in _failed_events()] == [mate.buyer_id]
    deals_sweep()
    deals_sweep(now=timezone.now() + timedelta(days=3))
    assert _requests(fake, mate, "capture") == [f"order:{mate.id}:capture"]
    assert _requests(fake, mate, "void") == [f"order:{mate.id}:void"]
    assert ledger_report().ok


def test_a_refused_capture_whose_void_the_provider_fails_is_released_by_the_sweep(provider, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1)
    order = order_place(deal_id=deal.id, buyer=make_user("slowvoid"), quantity=1, gateway="card")
    fake.refusing_captures.add(str(order.buyer_id))
    fake.while_handling["void"] = lambda: setattr(fake, "outage", 503)
    assert deal_tip_check(deal_id=deal.id) is True
    # Failed and out of the deal already; its money stays held until the provider releases the hold.
    assert _state(order) == OrderState.VOIDING
    assert _sold_and_takers(deal) == (0, 0)
    assert _held(order) == PRICE
    assert ledger_report().ok
    assert deals_sweep()["voided"] == 0
    fake.outage = None
    assert deals_sweep()["voided"] == 1
    assert _state(order) == OrderState.VOIDED
    # Asked when the capture was refused and by the tip's settlement, then by each sweep: one key.
    assert _requests(fake, order, "void") == [f"order:{order.id}:void"] * 4
    assert _postings(order) == ["authorize", "void"]
    assert len(_failed_events()) == 1
    assert ledger_report().ok


@pytest.mark.parametrize("the_hold", ["unknown", "released_already", "lapsed"])
def test_a_void_the_provider_refuses_for_good_is_recorded_and_not_asked_again(
    provider, make_live_deal, the_hold
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=3)
    kept = order_place(deal_id=deal.id, buyer=make_user("stays"), quantity=1, gateway="card")
    leaving = order_place(deal_id=deal.id, buyer=make_user("leaves"), quantity=1, gateway="card")
    if the_hold == "unknown":
        del fake.holds[leaving.payment_ref]
    else:
        fake.holds[leaving.payment_ref]["status"] = "voided" if the_hold == "released_already" else "expired"
    cancelled = order_cancel(order_id=leaving.id, by=leaving.buyer)
    # Nothing is left to release at the provider: the void is recorded and the money leaves held.
    assert cancelled.state == OrderState.VOIDED
    assert _postings(leaving) == ["authorize", "void"]
    assert _held(leaving) == 0
    assert ledger.balance_of(ledger.gateway_account("card", "CNY")) == -PRICE  # the kept hold
    assert _sold_and_takers(deal) == (1, 1)
    assert _failed_events() == []  # the buyer cancelled: the order did not fail
    assert deals_sweep()["voided"] == 0
    deals_sweep(now=timezone.now() + timedelta(days=3))  # the deal fails, releasing the kept hold
    assert _requests(fake, leaving, "void") == [f"order:{leaving.id}:void"]
    assert (_state(kept), _state(leaving)) == (OrderState.VOIDED, OrderState.VOIDED)
    assert ledger_report().ok


def test_the_providers_webhook_of_a_hold_whose_capture_it_then_refuses_fails_the_order(
    provider, make_live_deal, monkeypatch
):
    from weituan.deals.services import orders

    fake, gateway = provider
    deal = make_live_deal(tipping_point=1)
    first = order_place(deal_id=deal.id, buyer=make_user("tipper"), quantity=1, gateway="card")
    assert deal_tip_check(deal_id=deal.id) is True
    assert _state(first) == OrderState.CAPTURED
    # An order whose process stopped before it heard the provider's hold, which its webhook then reports.
    buyer = make_user("webhooked")
    monkeypatch.setattr(orders, "order_authorize_remote", lambda *, order_id: False)
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=1, gateway="card")
    monkeypatch.undo()
    key = f"order:{order.id}:authorize"
    ref = gateway.authorize(buyer_id=buyer.id, amount=order.amount, currency="CNY", key=key)
    fake.refusing_captures.add(str(buyer.id))
    body = json.dumps(
        {"id": "evt_h", "type": "authorization.succeeded", "data": {"authorization": ref, "reference": key}}
    ).encode()
    answer = Client().post(
        "/api/v1/payments/card/webhook",
        body,
        content_type="application/json",
        headers={"Webhook-Signature": gateway.webhook_sign(body, int(time.time()))},
    )
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"event": "evt_h", "result": "failed", "order_id": order.id}
    assert _state(order) == OrderState.VOIDED
    assert fake.holds[ref]["status"] == "voided"
    assert _sold_and_takers(deal) == (1, 1)
    assert [user_id for user_id, _ in _failed_events()] == [buyer.id]
    assert ledger_report().ok


def test_a_refused_capture_is_raised_to_whoever_captures(provider, make_live_deal):
    from weituan.deals.services.holds import order_capture

    fake, _ = provider
    deal = make_live_deal(tipping_point=2)
    order = order_place(deal_id=deal.id, buyer=make_user("direct"), quantity=1, gateway="card")
    fake.refusing_captures.add(str(order.buyer_id))
    with pytest.raises(PaymentDeclined) as refused:
        order_capture(order_id=order.id)
    assert (refused.value.code, refused.value.message) == (
        "payment_declined",
        "the card issuer declined the capture",
    )
    assert _state(order) == OrderState.VOIDED
    # Asked again, there is nothing left to capture.
    assert order_capture(order_id=order.id) is False
    assert len(_requests(fake, order, "capture")) == 1
    assert ledger_report().ok
