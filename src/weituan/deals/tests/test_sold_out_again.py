"""A sold-out deal that units come back to (an order cancelled, failed or expired) sells again while its
window is open: back to tipped, so the next buyer takes the freed unit and is paid at once, the Redis
gate letting them in. A deal whose window has ended stays closed; nothing is ever sold twice."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.db.models import Sum
from django.utils import timezone

from weituan.core.errors import ServiceError
from weituan.core.redis import get_redis, rkey
from weituan.core.testing import make_user
from weituan.deals.errors import DealNotSelling, SoldOut
from weituan.deals.models import Deal, DealState, Order, OrderEndReason, OrderState, UserDealQuota
from weituan.deals.models.orders import STOCK_STATES
from weituan.deals.queries import ledger_report
from weituan.deals.services import orders
from weituan.deals.services.deals import deal_end, deal_tip_check, deals_sweep
from weituan.deals.services.holds import order_cancel, order_reservation_expire
from weituan.deals.services.orders import order_place
from weituan.deals.services.stock import stock_gate_catch_up
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal

pytestmark = pytest.mark.django_db


def _deal(deal: Deal) -> tuple[str, int, int]:
    deal.refresh_from_db()
    return deal.state, deal.sold, deal.released


def _units_held(deal: Deal) -> int:
    return int(Order.objects.filter(deal=deal, state__in=STOCK_STATES).aggregate(n=Sum("quantity"))["n"] or 0)


def sold_out_with_a_team_member(make_live_deal: Any, fund: Any) -> tuple[Deal, Order]:
    """A tipped deal of three units, sold out: two paid solo orders and a held order in a team that
    has not filled (which its buyer may still cancel)."""
    deal = make_live_deal(max_quantity=3, tipping_point=1, per_user_limit=1, team_price=5_000, team_size=3)
    first = make_user("first")
    fund(first)
    order_place(deal_id=deal.id, buyer=first, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    waiting = make_user("waiting")
    fund(waiting)
    member = order_place(deal_id=deal.id, buyer=waiting, quantity=1, team="start")
    last = make_user("last")
    fund(last)
    assert order_place(deal_id=deal.id, buyer=last, quantity=1).state == OrderState.CAPTURED
    deal_tip_check(deal_id=deal.id)
    assert _deal(deal) == (DealState.SOLD_OUT, 3, 3)
    return deal, member


def test_a_sold_out_deal_whose_buyer_cancels_sells_the_freed_unit(make_live_deal, fund):
    deal, member = sold_out_with_a_team_member(make_live_deal, fund)
    late = make_user("late")
    fund(late)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=late, quantity=1)

    order_cancel(order_id=member.id, by=member.buyer)
    assert _deal(deal) == (DealState.TIPPED, 2, 3)
    # Still tipped: the freed unit is bought as any unit of a tipped deal, and paid at once.
    bought = order_place(deal_id=deal.id, buyer=late, quantity=1)
    assert bought.state == OrderState.CAPTURED
    deal_tip_check(deal_id=deal.id)
    assert _deal(deal) == (DealState.SOLD_OUT, 3, 3)
    deal.refresh_from_db()
    assert deal.tipped_at is not None and deal.takers == 3 == _units_held(deal)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=make_user("later"), quantity=1)
    assert ledger_report().ok


def test_a_capture_refused_on_a_sold_out_deal_puts_its_unit_back_on_sale(provider, make_live_deal, fund):
    fake, _ = provider
    deal = make_live_deal(max_quantity=2, tipping_point=2, per_user_limit=1)
    order_place(deal_id=deal.id, buyer=make_user("paying"), quantity=1, gateway="card")
    refused = order_place(
        deal_id=deal.id, buyer=(declined := make_user("declined")), quantity=1, gateway="card"
    )
    fake.refusing_captures.add(str(declined.id))
    # The check tips the deal, marks it sold out, then captures: the refused capture fails its order.
    assert deal_tip_check(deal_id=deal.id) is True
    refused.refresh_from_db()
    assert (refused.state, refused.end_reason) == (OrderState.VOIDED, OrderEndReason.PAYMENT_DECLINED)
    assert _deal(deal) == (DealState.TIPPED, 1, 2)
    fund(next_buyer := make_user("next_buyer"))
    assert order_place(deal_id=deal.id, buyer=next_buyer, quantity=1).state == OrderState.CAPTURED
    deal_tip_check(deal_id=deal.id)
    assert _deal(deal) == (DealState.SOLD_OUT, 2, 2)
    assert ledger_report().ok


def test_a_reservation_expiring_on_a_sold_out_deal_puts_its_unit_back_on_sale(
    provider, make_live_deal, fund, monkeypatch
):
    deal = make_live_deal(max_quantity=2, tipping_point=1, per_user_limit=1)
    fund(first := make_user("first"))
    order_place(deal_id=deal.id, buyer=first, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    monkeypatch.setattr(orders, "order_authorize_remote", lambda *, order_id: False)
    reserved = order_place(deal_id=deal.id, buyer=make_user("slow"), quantity=1, gateway="card")
    monkeypatch.undo()
    deal_tip_check(deal_id=deal.id)
    assert _deal(deal) == (DealState.SOLD_OUT, 2, 2)
    Order.objects.filter(id=reserved.id).update(reserve_expires_at=timezone.now() - timedelta(seconds=1))
    assert order_reservation_expire(order_id=reserved.id) is True
    assert _deal(deal) == (DealState.TIPPED, 1, 2)
    # Run again, nothing moves twice.
    assert order_reservation_expire(order_id=reserved.id, force=True) is False
    assert _deal(deal) == (DealState.TIPPED, 1, 2)
    fund(next_buyer := make_user("next_buyer"))
    assert order_place(deal_id=deal.id, buyer=next_buyer, quantity=1).state == OrderState.CAPTURED


def test_a_sold_out_deal_whose_window_has_ended_stays_closed(make_live_deal, fund):
    deal, member = sold_out_with_a_team_member(make_live_deal, fund)
    # Its window is over, and its end not run yet: a unit coming back does not put it on sale.
    Deal.objects.filter(id=deal.id).update(ends_at=timezone.now() - timedelta(seconds=1))
    order_cancel(order_id=member.id, by=member.buyer)
    assert _deal(deal) == (DealState.SOLD_OUT, 2, 3)
    assert deals_sweep()["selling_again"] == 0
    assert _deal(deal) == (DealState.CLOSED, 2, 3)  # the same sweep ended it
    fund(late := make_user("late"))
    with pytest.raises(DealNotSelling):
        order_place(deal_id=deal.id, buyer=late, quantity=1)
    assert _deal(deal) == (DealState.CLOSED, 2, 3)


def test_a_closed_deal_releasing_its_teams_stays_closed(make_live_deal, fund):
    deal, member = sold_out_with_a_team_member(make_live_deal, fund)
    assert deal_end(deal_id=deal.id, now=timezone.now() + timedelta(days=3)) == DealState.CLOSED
    member.refresh_from_db()
    assert (member.state, member.end_reason) == (OrderState.VOIDED, OrderEndReason.TEAM_EXPIRED)
    assert _deal(deal) == (DealState.CLOSED, 2, 3)


def test_the_sweep_puts_on_sale_a_sold_out_deal_left_with_units_back(make_live_deal, fund):
    deal, member = sold_out_with_a_team_member(make_live_deal, fund)
    order_cancel(order_id=member.id, by=member.buyer)
    # As a deal was left before a unit coming back put it on sale: sold out with a unit free.
    Deal.objects.filter(id=deal.id).update(state=DealState.SOLD_OUT)
    counts = deals_sweep()
    assert (counts["selling_again"], counts["tipped"]) == (1, 0)
    assert _deal(deal) == (DealState.TIPPED, 2, 3)
    assert deals_sweep()["selling_again"] == 0
    fund(late := make_user("late"))
    assert order_place(deal_id=deal.id, buyer=late, quantity=1).state == OrderState.CAPTURED


def _gate(deal: Deal) -> tuple[int, int]:
    """(units released, units sold) as the Redis gate counts them."""
    stock = get_redis().hgetall(rkey("deal", deal.id, "stock"))
    return int(stock[b"released"]), int(stock[b"sold"])


@pytest.mark.redis
def test_the_stock_gate_lets_the_next_buyer_take_the_freed_unit(
    make_live_deal, fund, django_capture_on_commit_callbacks
):
    deal, member = sold_out_with_a_team_member(make_live_deal, fund)
    assert _gate(deal) == (3, 3)
    # A process stopped between its take in Redis and its order: the gate counts a unit too many.
    get_redis().hincrby(rkey("deal", deal.id, "stock"), "sold", 1)
    fund(late := make_user("late"))
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=late, quantity=1)
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order_id=member.id, by=member.buyer)
    # The deal selling again caught the gate up with the database: the freed unit is there to take.
    assert _gate(deal) == (3, 2)
    assert _deal(deal) == (DealState.TIPPED, 2, 3)
    assert order_place(deal_id=deal.id, buyer=late, quantity=1).state == OrderState.CAPTURED
    assert _gate(deal) == (3, 3)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=make_user("later"), quantity=1)
    assert _gate(deal) == (3, 3)
    assert _deal(deal)[1:] == (3, 3)


@pytest.mark.redis
def test_catching_the_gate_up_never_shows_fewer_units_free(make_live_deal, fund):
    deal, _member = sold_out_with_a_team_member(make_live_deal, fund)
    stock_key = rkey("deal", deal.id, "stock")
    # A release given back in Redis and not committed yet: the gate shows a unit the database does not.
    get_redis().hset(stock_key, mapping={"sold": 2, "released": 3})
    stock_gate_catch_up(deal_id=deal.id)
    assert _gate(deal) == (3, 2)
    get_redis().hset(stock_key, mapping={"sold": 5, "released": 1})
    stock_gate_catch_up(deal_id=deal.id)
    assert _gate(deal) == (3, 3)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_buyers_racing_cancels_on_a_sold_out_deal_take_each_freed_unit_once(merchant):
    """Real threads on PostgreSQL (and the Redis gate when configured): three team members cancel while
    a dozen buyers keep trying a sold-out deal of four units. Each freed unit is sold once, and no
    more: `sold` never passes `released`, and what the orders hold is what the deal counts."""
    deal = live_deal(
        merchant, max_quantity=4, tipping_point=1, per_user_limit=1, team_price=5_000, team_size=5
    )
    first = make_user("first")
    wallet_top_up(user=first, amount=10_000)
    order_place(deal_id=deal.id, buyer=first, quantity=1)
    deal_tip_check(deal_id=deal.id)
    members = []
    for index in range(3):
        member = make_user(f"member{index}")
        wallet_top_up(user=member, amount=10_000)
        members.append(order_place(deal_id=deal.id, buyer=member, quantity=1, team="start"))
    deal_tip_check(deal_id=deal.id)
    assert _deal(deal) == (DealState.SOLD_OUT, 4, 4)
    buyers = [make_user(f"racer{index}") for index in range(12)]
    for buyer in buyers:
        wallet_top_up(user=buyer, amount=10_000)
    cancels_done = threading.Event()
    cancelled = threading.Barrier(len(members) + 1)
    start = threading.Barrier(len(members) + len(buyers))
    seen: list[tuple[int, int]] = []

    def cancel(order: Order) -> str:
        try:
            start.wait()
            order_cancel(order_id=order.id, by=order.buyer)
            return "cancelled"
        finally:
            connections.close_all()
            cancelled.wait()

    def buy(buyer: Any) -> str:
        try:
            start.wait()
            for _ in range(2_000):
                after_the_cancels = cancels_done.is_set()
                try:
                    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
                    return "ok"
                except ServiceError as exc:
                    assert exc.code in ("sold_out",), exc.code
                    seen.append(Deal.objects.filter(id=deal.id).values_list("sold", "released").get())
                    if after_the_cancels:  # tried once every unit freed was back: none left for it
                        return exc.code
                time.sleep(0.002)
            return "gave_up"
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(members) + len(buyers)) as pool:
        cancels = [pool.submit(cancel, order) for order in members]
        buys = [pool.submit(buy, buyer) for buyer in buyers]
        cancelled.wait()
        cancels_done.set()
        outcomes = [future.result() for future in buys]
    assert [future.result() for future in cancels] == ["cancelled"] * 3
    assert sorted(outcomes) == ["ok"] * 3 + ["sold_out"] * 9
    assert all(sold <= released for sold, released in seen)
    deal_tip_check(deal_id=deal.id)
    deal.refresh_from_db()
    assert (deal.state, deal.sold, deal.released, deal.takers) == (DealState.SOLD_OUT, 4, 4, 4)
    assert _units_held(deal) == 4
    assert Order.objects.filter(deal=deal, state=OrderState.CAPTURED).count() == 4
    assert UserDealQuota.objects.filter(deal=deal).aggregate(n=Sum("own"))["n"] == 4
    assert ledger_report().ok
