"""Releasing a hosted provider's hold (the fake provider on 127.0.0.1): the order is `voiding` from before
the provider is asked until the void is recorded. Meanwhile it is no longer a buyer of its deal (a tip
check does not count it), has given its unit back and cannot be captured, while its money stays held in
the ledger; a provider that fails, or a process that stops in between, leaves it voiding for the deal
sweep to finish under the same idempotency key."""

import json
import time
from typing import Any
from unittest import mock

import pytest
from django.db import connections

from weituan.core.testing import make_user
from weituan.deals.models import AccountKind, Deal, DealState, Order, OrderEndReason, OrderState, Posting
from weituan.deals.queries import deal_buyers_counted, ledger_report
from weituan.deals.services import holds as hold_services
from weituan.deals.services import ledger
from weituan.deals.services.deals import deal_tip_check, deals_sweep
from weituan.deals.services.holds import order_cancel, order_capture, order_void
from weituan.deals.services.orders import order_place

PRICE = 9_900  # the deals' price (conftest.live_deal)


@pytest.fixture(autouse=True)
def _tip_checks_only_when_called(settings: Any) -> None:
    # Orders enqueue the tip check after their commit; here the tests run it when they mean to.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def _held_by_card(deal: Deal, name: str) -> Order:
    order = order_place(deal_id=deal.id, buyer=make_user(name), quantity=1, gateway="card")
    assert order.state == OrderState.AUTHORIZED
    return order


def _state(order: Order) -> str:
    return str(Order.objects.filter(id=order.id).values_list("state", flat=True).get())


def _held(order: Order) -> int:
    return ledger.balance_of(ledger.held_account(order.buyer_id, "CNY"))


def _void_requests(fake: Any) -> list[tuple[str, str]]:
    return [(path, key) for path, key, _ in fake.requests if path.endswith("/void")]


def _sold_and_takers(deal: Deal) -> tuple[int, int]:
    deal.refresh_from_db()
    return deal.sold, deal.takers


class ProcessKilled(BaseException):
    """The process stops where this is raised: nothing after it runs, nothing catches it."""


@pytest.mark.django_db(transaction=True)
def test_a_tip_check_while_the_provider_voids_a_cancelled_hold_does_not_count_it(provider, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=3)
    a, b, c = (_held_by_card(deal, f"voider{i}") for i in range(3))
    # While the provider is releasing c's hold, the tip check runs elsewhere and someone tries to
    # capture c.
    seen: dict[str, Any] = {}

    def elsewhere() -> None:
        try:
            seen["state"] = _state(c)
            seen["counted"] = deal_buyers_counted(deal_id=deal.id)
            seen["tipped"] = deal_tip_check(deal_id=deal.id)
            seen["captured"] = order_capture(order_id=c.id)
        finally:
            connections.close_all()

    fake.while_handling["void"] = elsewhere
    cancelled = order_cancel(order_id=c.id, by=c.buyer)
    assert seen == {"state": OrderState.VOIDING, "counted": 2, "tipped": False, "captured": False}
    assert cancelled.state == OrderState.VOIDED
    deal.refresh_from_db()
    assert (deal.state, deal.tipped_at, deal.sold, deal.takers) == (DealState.LIVE, None, 2, 2)
    assert [_state(order) for order in (a, b)] == [OrderState.AUTHORIZED] * 2
    assert [fake.holds[order.payment_ref]["status"] for order in (a, b, c)] == ["held", "held", "voided"]
    assert not [path for path, _ in fake.calls if path.endswith("/capture")]
    assert _held(c) == 0
    assert ledger_report().ok


@pytest.mark.django_db
def test_a_void_the_provider_fails_stays_voiding_until_the_sweep_releases_it(provider, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=2)
    kept, leaving = _held_by_card(deal, "keeper"), _held_by_card(deal, "leaver")
    fake.outage = 500
    # The cancel is done: the order is out of the deal's buyers and gives its unit back at once, and can
    # no longer be paid; the money stays held until the provider has released the hold.
    cancelled = order_cancel(order_id=leaving.id, by=leaving.buyer)
    assert cancelled.state == OrderState.VOIDING
    assert (deal_buyers_counted(deal_id=deal.id), _sold_and_takers(deal)) == (1, (1, 1))
    assert deal_tip_check(deal_id=deal.id) is False
    assert order_capture(order_id=leaving.id) is False
    assert _held(leaving) == PRICE
    assert not Posting.objects.filter(order=leaving, kind="void").exists()
    report = ledger_report()
    assert report.ok, report.problems()

    # The tip check's settlement and the sweep ask again while the provider is still down, then the sweep
    # once it is back; the void is recorded once, under the one key every request carried.
    assert deals_sweep()["voided"] == 0
    assert _state(leaving) == OrderState.VOIDING
    fake.outage = None
    assert deals_sweep()["voided"] == 1
    assert deals_sweep()["voided"] == 0
    key = f"order:{leaving.id}:void"
    path = f"/authorizations/{leaving.payment_ref}/void"
    assert _void_requests(fake) == [(path, key)] * 4
    assert [(p, k) for p, k in fake.calls if p.endswith("/void")] == [(path, key)]
    assert (_state(leaving), _state(kept)) == (OrderState.VOIDED, OrderState.AUTHORIZED)
    assert Posting.objects.filter(order=leaving, kind="void").count() == 1
    assert _held(leaving) == 0
    assert ledger.balance_of(ledger.gateway_account("card", "CNY")) == -PRICE  # the kept hold
    assert _sold_and_takers(deal) == (1, 1)
    assert ledger_report().ok


@pytest.mark.django_db
@pytest.mark.parametrize("stops", ["before_the_provider", "after_the_provider"])
def test_a_void_cut_short_by_a_stopped_process_is_finished_by_the_sweep(provider, make_live_deal, stops):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, team_price=5_000, team_size=3)
    leader = order_place(deal_id=deal.id, buyer=make_user("lead"), quantity=1, team="start", gateway="card")
    member = order_place(
        deal_id=deal.id, buyer=make_user("mate"), quantity=1, team=leader.team_id, gateway="card"
    )
    if stops == "before_the_provider":
        cut = mock.patch.object(type(provider[1]), "void", side_effect=ProcessKilled)
    else:
        cut = mock.patch.object(hold_services, "_void_record", side_effect=ProcessKilled)
    with cut, pytest.raises(ProcessKilled):
        order_void(order_id=member.id, reason=OrderEndReason.CANCELLED)
    # What committed before the stop: the order is voiding, out of its team and the deal's units.
    assert _state(member) == OrderState.VOIDING
    assert leader.team is not None
    leader.team.refresh_from_db()
    assert leader.team.members == 1
    assert _sold_and_takers(deal) == (1, 1)
    assert fake.holds[member.payment_ref]["status"] == (
        "held" if stops == "before_the_provider" else "voided"
    )
    assert ledger_report().ok

    counts = deals_sweep()
    assert (counts["settled"], counts["voided"]) == (1, 1)
    assert (_state(member), _state(leader)) == (OrderState.VOIDED, OrderState.AUTHORIZED)
    # The sweep that finished the void kept the reason the order was released for.
    assert Order.objects.get(id=member.id).end_reason == OrderEndReason.CANCELLED
    key = f"order:{member.id}:void"
    assert {k for _, k in _void_requests(fake)} == {key}
    assert [k for p, k in fake.calls if p.endswith("/void")] == [key]
    assert Posting.objects.filter(order=member, kind="void").count() == 1
    assert ledger_report().ok


@pytest.mark.django_db
def test_the_providers_webhook_ends_a_voiding_order(provider, make_live_deal, client):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=2)
    order = _held_by_card(deal, "hooked")
    fake.outage = 503
    assert order_cancel(order_id=order.id, by=order.buyer).state == OrderState.VOIDING
    # The provider, though it failed to answer, released the hold and says so.
    body = json.dumps(
        {"id": "evt_v", "type": "authorization.voided", "data": {"authorization": order.payment_ref}}
    ).encode()
    answer = client.post(
        "/api/v1/payments/card/webhook",
        body,
        content_type="application/json",
        headers={"Webhook-Signature": gateway.webhook_sign(body, int(time.time()))},
    )
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"event": "evt_v", "result": "voided", "order_id": order.id}
    assert _state(order) == OrderState.VOIDED
    assert Posting.objects.filter(order=order, kind="void").count() == 1
    assert ledger.balance_of(ledger.account_get(kind=AccountKind.GATEWAY, currency="CNY", name="card")) == 0
    assert _sold_and_takers(deal) == (0, 0)
    assert ledger_report().ok
