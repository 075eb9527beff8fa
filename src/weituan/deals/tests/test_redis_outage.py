"""Deals while Redis cannot be reached, on a Redis of the test's own: an order is refused 503 with
nothing taken, but what gives units back (a cancel, a deal failing at its end) or puts them on sale (a
flash batch) is done without it, and the stock gate counts right once Redis answers again."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.models import (
    Deal,
    DealState,
    FlashBatch,
    Order,
    OrderEndReason,
    OrderState,
    Team,
    TeamState,
)
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services.deals import deals_sweep
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db(transaction=True)


def _order(client: Any, deal_id: int, quantity: int = 1) -> Any:
    return client.post(
        f"/api/v1/deals/{deal_id}/orders",
        data=json.dumps({"quantity": quantity}),
        content_type="application/json",
    )


def test_a_cancel_while_redis_is_unreachable_releases_the_hold_and_the_buyer_may_buy_again(
    own_redis: Any, shopper: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=3)
    fund(shopper)
    client = api_as(shopper)
    order = _order(client, deal.id).json()

    with own_redis.unreachable():
        cancelled = client.post(f"/api/v1/orders/{order['id']}/cancel", HTTP_IDEMPOTENCY_KEY="c-1")

    assert cancelled.status_code == 200, cancelled.content
    assert (cancelled.json()["state"], cancelled.json()["end_reason"]) == ("voided", "cancelled")
    assert wallet_of(user=shopper).held == 0
    assert Deal.objects.get(id=deal.id).sold == 0
    # Redis kept counting the cancelled unit against the buyer: their full limit is still theirs.
    again = _order(client, deal.id, quantity=2)
    assert again.status_code == 201, again.content
    assert Deal.objects.get(id=deal.id).sold == 2
    assert ledger_report().ok


def test_a_deal_failing_at_its_end_while_redis_is_down_releases_every_hold(
    own_redis: Any, clock: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=3)
    for buyer in (shopper, outsider):
        fund(buyer)
        order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    own_redis.stop()
    clock.forward((deal.ends_at - timezone.now()).total_seconds() + 1)

    counts = deals_sweep()

    assert counts["ended"] == 1
    assert Deal.objects.get(id=deal.id).state == DealState.FAILED
    assert set(Order.objects.filter(deal=deal).values_list("state", "end_reason")) == {
        (OrderState.VOIDED, OrderEndReason.DEAL_FAILED)
    }
    assert [wallet_of(user=buyer).available for buyer in (shopper, outsider)] == [100_000, 100_000]
    report = ledger_report()
    assert report.ok, report.problems()


def test_a_flash_batch_due_while_redis_is_unreachable_sells_once_redis_answers(
    own_redis: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    now = timezone.now()
    deal = make_live_deal(
        max_quantity=3,
        per_user_limit=1,
        tipping_point=1,
        flash_batches=((now - timedelta(seconds=1), 1), (now + timedelta(hours=1), 2)),
    )
    late, later = make_user("latecomer"), make_user("later")
    for buyer in (shopper, outsider, late, later):
        fund(buyer)
    assert _order(api_as(shopper), deal.id).status_code == 201
    FlashBatch.objects.filter(deal=deal, released_at__isnull=True).update(release_at=timezone.now())

    with own_redis.unreachable():
        deals_sweep()
        refused = _order(api_as(outsider), deal.id)

    assert (refused.status_code, refused.json()["code"]) == (503, "unavailable")
    assert Deal.objects.get(id=deal.id).released == 3
    # Redis kept the gate as it was before the batch: it takes the database's units with the next order.
    assert [_order(api_as(buyer), deal.id).status_code for buyer in (outsider, late)] == [201, 201]
    last = _order(api_as(later), deal.id)
    assert (last.status_code, last.json()["code"]) == (409, "sold_out")
    assert Deal.objects.get(id=deal.id).sold == 3
    assert ledger_report().ok


def test_a_checkout_page_meeting_redis_down_sends_the_same_order_again_once_it_is_back(
    own_redis: Any, shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=3)
    fund(shopper)
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(shopper)
    form = {"quantity": "1", "unit_price": str(deal.deal_price), "checkout_token": "page-1-buy"}
    own_redis.stop()

    refused = client.post(f"/deals/{deal.id}/checkout", form)

    assert (refused.status_code, refused["Retry-After"]) == (503, "5")
    page = refused.content.decode()
    assert "Your order is not confirmed yet" in page
    assert '<input type="hidden" name="checkout_token" value="page-1-buy">' in page
    assert '<input type="hidden" name="quantity" value="1">' in page
    assert "Send the order again" in page
    assert not Order.objects.filter(deal=deal).exists()
    zh = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(shopper)
    assert "再次提交订单" in zh.post(f"/deals/{deal.id}/checkout", form).content.decode()

    own_redis.start()
    sent = [client.post(f"/deals/{deal.id}/checkout", form) for _ in range(2)]

    assert [answer.status_code for answer in sent] == [302, 302]
    assert Order.objects.filter(deal=deal, buyer=shopper).count() == 1
    assert Deal.objects.get(id=deal.id).sold == 1
    assert wallet_of(user=shopper).held == deal.deal_price


def test_a_team_join_or_start_while_redis_is_unreachable_is_a_503_taking_no_seat(
    own_redis: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    deal = make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)
    late = make_user("latecomer")
    for buyer in (shopper, outsider, late):
        fund(buyer)
    team_id = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start").team_id

    def team_order(user: Any, team: Any) -> Any:
        return api_as(user).post(
            f"/api/v1/deals/{deal.id}/orders",
            data=json.dumps({"quantity": 1, "team": team}),
            content_type="application/json",
        )

    with own_redis.unreachable():
        answers = [team_order(outsider, team_id), team_order(late, "start")]

    assert [(answer.status_code, answer.json()["code"]) for answer in answers] == [(503, "unavailable")] * 2
    assert Team.objects.filter(deal=deal).count() == 1
    assert Team.objects.get(id=team_id).members == 1
    assert list(Order.objects.filter(deal=deal).values_list("buyer_id", flat=True)) == [shopper.id]
    assert Deal.objects.get(id=deal.id).sold == 1
    assert [team_order(outsider, team_id).status_code, team_order(late, "start").status_code] == [201, 201]
    assert Team.objects.get(id=team_id).members == 2


def test_a_team_expiring_while_redis_is_down_releases_its_members_holds(
    own_redis: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)
    for buyer in (shopper, outsider):
        fund(buyer)
    team_id = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start").team_id
    order_place(deal_id=deal.id, buyer=outsider, quantity=1, team=team_id)
    Team.objects.filter(id=team_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    own_redis.stop()

    deals_sweep()

    assert Team.objects.get(id=team_id).state == TeamState.EXPIRED
    assert set(Order.objects.filter(deal=deal).values_list("state", "end_reason")) == {
        (OrderState.VOIDED, OrderEndReason.TEAM_EXPIRED)
    }
    assert [wallet_of(user=buyer).held for buyer in (shopper, outsider)] == [0, 0]
    assert Deal.objects.get(id=deal.id).sold == 0
    report = ledger_report()
    assert report.ok, report.problems()
