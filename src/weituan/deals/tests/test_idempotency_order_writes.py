"""A cancel or a switch to the solo price that took effect keeps its Idempotency-Key with the change: a
retry whose first answer was lost after the commit (an outage answering 503, a process that died before
storing its answer) is answered with the order, at once and a day later, and changes nothing; the key
still names that one request, so it is refused for any other."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.test import Client

from weituan.accounts.tokens import access_token_issue
from weituan.core.errors import ServiceError
from weituan.core.idempotency import request_fingerprint, user_scope
from weituan.core.models import IdempotencyRecord
from weituan.core.testing import make_user
from weituan.deals import api as deals_api
from weituan.deals.models import Deal, Entry, Order, OrderEndReason, OrderState, Posting, WriteKey
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.teams import team_switch_solo
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def _money() -> tuple[int, int]:
    return Posting.objects.count(), Entry.objects.count()


def _mismatch(answer: Any) -> None:
    assert answer.status_code == 422, answer.content
    assert answer.json() == {
        "error": "This Idempotency-Key was already used for a different request",
        "code": "idempotency_mismatch",
    }


def _answer_lost_once(monkeypatch: Any) -> None:
    """The next answer of the API's orders fails after its write committed, as a database dropping the
    connection between the commit and the answer makes it fail (503 `store_unavailable`)."""
    body = deals_api.order_body
    failed: list[int] = []

    def lost(order: Order) -> dict[str, Any]:
        if not failed:
            failed.append(order.id)
            raise OperationalError("server closed the connection unexpectedly")
        return body(order)

    monkeypatch.setattr(deals_api, "order_body", lost)


def test_a_cancel_whose_answer_was_lost_is_answered_with_the_order(
    api_as, shopper, make_live_deal, fund, monkeypatch, clock
):
    deal = make_live_deal(tipping_point=5)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    api = api_as(shopper)

    def cancel() -> Any:
        return api.post(f"/api/v1/orders/{order.id}/cancel", HTTP_IDEMPOTENCY_KEY="cancel-1")

    _answer_lost_once(monkeypatch)
    lost = cancel()
    assert lost.status_code == 503, lost.content
    # The cancel took effect and kept its key; its idempotency record was forgotten with the failure.
    order.refresh_from_db()
    assert (order.state, order.end_reason) == (OrderState.VOIDED, OrderEndReason.CANCELLED)
    assert not IdempotencyRecord.objects.filter(key="cancel-1").exists()
    assert list(WriteKey.objects.values_list("sender_id", "key", "request", "order_id")) == [
        (shopper.id, "cancel-1", f"cancel:{order.id}", order.id)
    ]
    after = (_money(), wallet_of(user=shopper), Deal.objects.get(id=deal.id).sold)

    again = cancel()
    assert again.status_code == 200, again.content
    assert (again.json()["id"], again.json()["state"], again.json()["end_reason"]) == (
        order.id,
        "voided",
        "cancelled",
    )
    # Long after any record of its first answer would be gone: the same answer, nothing moved.
    clock.forward(DAY + 60)
    IdempotencyRecord.objects.filter(key="cancel-1").delete()
    later = cancel()
    assert (later.status_code, later.json()) == (200, again.json())
    assert (_money(), wallet_of(user=shopper), Deal.objects.get(id=deal.id).sold) == after
    assert ledger_report().ok
    # Without the key, the order is refused as any ended order is.
    plain = api.post(f"/api/v1/orders/{order.id}/cancel")
    assert (plain.status_code, plain.json()["code"]) == (409, "not_cancellable")


def test_a_cancel_left_unanswered_by_a_crash_is_answered_at_once_and_after_the_stale_minute(
    api_as, shopper, make_live_deal, fund, clock
):
    deal = make_live_deal(tipping_point=5)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    path = f"/api/v1/orders/{order.id}/cancel"
    # What a process that died between the cancel's commit and storing its answer leaves behind: the
    # cancel done, with its key, and the request's idempotency record unfinished.
    IdempotencyRecord.objects.create(
        scope=user_scope(shopper.id), key="cancel-2", request_hash=request_fingerprint("POST", path, {})
    )
    order_cancel(order_id=order.id, by=shopper, client_key="cancel-2")
    after = (_money(), wallet_of(user=shopper))
    api = api_as(shopper)

    def cancel() -> Any:
        return api.post(path, HTTP_IDEMPOTENCY_KEY="cancel-2")

    # Not "still being processed": the cancel is known to have taken effect.
    first = cancel()
    assert (first.status_code, first.json()["state"]) == (200, "voided"), first.content
    # Past the minute after which an unfinished record is taken over and its request run again, and a
    # day on: still the cancelled order, never `not_cancellable`.
    for seconds in (61, DAY):
        clock.forward(seconds)
        retry = cancel()
        assert (retry.status_code, retry.json()) == (200, first.json())
    assert (_money(), wallet_of(user=shopper)) == after
    assert ledger_report().ok


def test_the_key_a_cancel_kept_names_that_cancel_only(api_as, shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=5, per_user_limit=3)
    fund(shopper)
    first = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    second = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    api = api_as(shopper)
    assert api.post(f"/api/v1/orders/{first.id}/cancel", HTTP_IDEMPOTENCY_KEY="k-1").status_code == 200
    # Only the cancel's own row keeps the key now.
    IdempotencyRecord.objects.filter(key="k-1").delete()
    before = (_money(), list(Order.objects.order_by("id").values_list("id", "state")))

    _mismatch(api.post(f"/api/v1/orders/{second.id}/cancel", HTTP_IDEMPOTENCY_KEY="k-1"))
    _mismatch(api.post(f"/api/v1/orders/{second.id}/solo", HTTP_IDEMPOTENCY_KEY="k-1"))
    _mismatch(
        api.post(
            f"/api/v1/deals/{deal.id}/orders",
            {"quantity": 1},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="k-1",
        )
    )
    assert (_money(), list(Order.objects.order_by("id").values_list("id", "state"))) == before
    # A key an order was placed with is refused for a cancel, and nothing is cancelled.
    placed = api.post(
        f"/api/v1/deals/{deal.id}/orders",
        {"quantity": 1},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="buy-1",
    )
    assert placed.status_code == 201, placed.content
    _mismatch(api.post(f"/api/v1/orders/{second.id}/cancel", HTTP_IDEMPOTENCY_KEY="buy-1"))
    assert Order.objects.get(id=second.id).state == OrderState.AUTHORIZED
    assert WriteKey.objects.count() == 1


def test_a_switch_to_solo_whose_answer_was_lost_is_answered_with_the_solo_order(
    api_as, make_live_deal, fund, monkeypatch, clock
):
    deal = make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)
    leader, member = make_user("lead_w"), make_user("memb_w")
    fund(leader)
    fund(member)
    first = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start")
    joined = order_place(deal_id=deal.id, buyer=member, quantity=1, team=first.team_id)
    api = api_as(member)

    def solo() -> Any:
        return api.post(f"/api/v1/orders/{joined.id}/solo", HTTP_IDEMPOTENCY_KEY="solo-9")

    _answer_lost_once(monkeypatch)
    assert solo().status_code == 503
    switched = Order.objects.get(buyer=member, team__isnull=True)
    assert (switched.state, switched.amount) == (OrderState.AUTHORIZED, 8_000)
    after = (_money(), wallet_of(user=member), Order.objects.count())
    clock.forward(DAY)
    again = solo()
    assert again.status_code == 200, again.content
    assert (again.json()["id"], again.json()["team_id"], again.json()["amount"]) == (switched.id, None, 8_000)
    assert (_money(), wallet_of(user=member), Order.objects.count()) == after
    assert ledger_report().ok


def _at_once(count: int, call: Any) -> list[Any]:
    """`call(index)` from `count` threads released together, each on its own connection."""
    barrier = threading.Barrier(count)

    def attempt(index: int) -> Any:
        try:
            barrier.wait()
            return call(index)
        except ServiceError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(attempt, range(count)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_retries_at_once_of_a_cancel_whose_answer_was_lost(merchant, shopper, monkeypatch, clock):
    deal = live_deal(merchant, tipping_point=5)
    wallet_top_up(user=shopper, amount=100_000)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    clients = [Client(HTTP_AUTHORIZATION=f"Bearer {access_token_issue(user=shopper)[0]}") for _ in range(8)]
    path = f"/api/v1/orders/{order.id}/cancel"
    _answer_lost_once(monkeypatch)
    assert clients[0].post(path, HTTP_IDEMPOTENCY_KEY="lost-1").status_code == 503
    after = (_money(), wallet_of(user=shopper))
    clock.forward(DAY)

    answers = _at_once(8, lambda index: clients[index].post(path, HTTP_IDEMPOTENCY_KEY="lost-1"))
    assert [(answer.status_code, answer.json()["id"], answer.json()["state"]) for answer in answers] == [
        (200, order.id, "voided")
    ] * 8
    assert (_money(), wallet_of(user=shopper)) == after
    assert ledger_report().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_cancel_sent_at_once_cancels_once_and_answers_every_one(merchant, shopper):
    deal = live_deal(merchant, tipping_point=5)
    wallet_top_up(user=shopper, amount=100_000)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    before = _money()

    outcomes = _at_once(
        8, lambda index: order_cancel(order_id=order.id, by=shopper, client_key="twice-1").state
    )
    assert outcomes == [OrderState.VOIDED] * 8
    # One release: one void posting, its units and quota back once.
    assert _money() == (before[0] + 1, before[1] + 2)
    assert WriteKey.objects.filter(key="twice-1").count() == 1
    assert (Deal.objects.get(id=deal.id).sold, wallet_of(user=shopper).held) == (0, 0)
    assert ledger_report().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_switch_to_solo_sent_at_once_switches_once(merchant):
    deal = live_deal(merchant, team_price=5_000, team_size=3, deal_price=8_000, max_quantity=20)
    leader, member = make_user("lead_x"), make_user("memb_x")
    for person in (leader, member):
        wallet_top_up(user=person, amount=100_000)
    first = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start")
    joined = order_place(deal_id=deal.id, buyer=member, quantity=1, team=first.team_id)

    outcomes = _at_once(6, lambda index: team_switch_solo(order_id=joined.id, by=member, client_key="s-1").id)
    solo = Order.objects.get(buyer=member, team__isnull=True)
    assert outcomes == [solo.id] * 6
    assert Order.objects.filter(buyer=member).count() == 2
    assert (wallet_of(user=member).held, Deal.objects.get(id=deal.id).sold) == (8_000, 2)
    assert ledger_report().ok
