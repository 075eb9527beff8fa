"""Real threads against PostgreSQL (and Redis when configured): no oversell, no double charge."""

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.db.models import Sum

from weituan.core.errors import Conflict, ServiceError
from weituan.core.idempotency import idempotent_call
from weituan.core.testing import make_user
from weituan.deals.models import DealState, Order, OrderState, Posting, UserDealQuota, Voucher
from weituan.deals.queries import deal_buyers_counted, ledger_report
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.tracking.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _close_connection() -> None:
    connections.close_all()


def test_hundreds_of_threads_buy_nine_units(merchant):
    deal = live_deal(merchant, max_quantity=9, tipping_point=9, per_user_limit=1)
    buyers = [make_user(f"rush{i}") for i in range(200)]
    for buyer in buyers:
        wallet_top_up(user=buyer, amount=10_000)
    barrier = threading.Barrier(200)  # every thread is started before any of them buys

    def attempt(index: int) -> str:
        try:
            barrier.wait()
            order_place(deal_id=deal.id, buyer=buyers[index], quantity=1)
            return "ok"
        except ServiceError as exc:
            return exc.code
        finally:
            _close_connection()

    with ThreadPoolExecutor(max_workers=200) as pool:
        outcomes = list(pool.map(attempt, range(200)))
    assert outcomes.count("ok") == 9
    assert set(outcomes) == {"ok", "sold_out"}
    deal.refresh_from_db()
    assert (deal.sold, deal.takers, deal.state) == (9, 9, DealState.SOLD_OUT)
    assert Order.objects.filter(deal=deal).count() == 9
    assert Order.objects.filter(deal=deal, state=OrderState.CAPTURED).count() == 9
    assert ledger_report().ok


def test_twenty_thousand_attempts_on_ten_thousand_units(merchant, settings):
    # Background tasks are only recorded here, not run inline after each commit: the point is the order
    # path under contention, not moving 20,000 tracking events to the analytics store one at a time.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    deal = live_deal(merchant, max_quantity=10_000, tipping_point=1, per_user_limit=2_500, deal_price=100)
    # One buyer per thread: each may take up to 2,500 units, so only the stock limits the sale. Eight
    # threads, as each holds a database connection throughout and a process's pool lends a bounded number.
    buyers = [make_user(f"bulk{i}") for i in range(8)]
    for buyer in buyers:
        wallet_top_up(user=buyer, amount=250_000)
    # The first order tips the deal, so every later one is held and captured in its own transaction.
    order_place(deal_id=deal.id, buyer=buyers[0], quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True

    def attempts(index: int) -> int:
        won = 0
        try:
            for _ in range(2_500 if index else 2_499):
                try:
                    order_place(deal_id=deal.id, buyer=buyers[index], quantity=1)
                    won += 1
                except ServiceError as exc:
                    assert exc.code == "sold_out"
        finally:
            _close_connection()
        return won

    with ThreadPoolExecutor(max_workers=8) as pool:
        won = 1 + sum(pool.map(attempts, range(8)))
    assert won == 10_000
    deal_tip_check(deal_id=deal.id)
    deal.refresh_from_db()
    assert (deal.sold, deal.takers, deal.state) == (10_000, 8, DealState.SOLD_OUT)
    assert Order.objects.filter(deal=deal).aggregate(q=Sum("quantity"))["q"] == 10_000
    assert Order.objects.filter(deal=deal, state=OrderState.CAPTURED).count() == 10_000
    assert Posting.objects.filter(kind="authorize").count() == 10_000
    assert Posting.objects.filter(kind="capture").count() == 10_000
    assert Voucher.objects.filter(deal=deal).count() == 10_000
    assert OutboxEvent.objects.filter(event="order_placed").count() == 10_000
    assert ledger_report().ok


def test_a_buyer_counts_once_however_their_orders_and_cancellations_interleave(merchant):
    # Ten buyers, four threads each: every thread places one unit, and some withdraw it at once. Buyers
    # of an even index withdraw all four (they end holding nothing), the others two of their four.
    deal = live_deal(merchant, max_quantity=40, tipping_point=11, per_user_limit=4, deal_price=1_000)
    buyers = [make_user(f"twice{i}") for i in range(16)]
    for buyer in buyers:
        wallet_top_up(user=buyer, amount=10_000)
    barrier = threading.Barrier(40)

    def attempt(index: int) -> str:
        who = index // 4
        try:
            barrier.wait()
            order = order_place(deal_id=deal.id, buyer=buyers[who], quantity=1)
            if who % 2 == 0 or index % 4 < 2:
                order_cancel(order_id=order.id, by=buyers[who])
            return "ok"
        except ServiceError as exc:
            return exc.code
        finally:
            _close_connection()

    with ThreadPoolExecutor(max_workers=40) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    assert outcomes == ["ok"] * 40
    deal.refresh_from_db()
    assert (deal.sold, deal.takers, deal.state) == (10, 5, DealState.LIVE)
    assert deal_buyers_counted(deal_id=deal.id) == 5
    quotas = dict(UserDealQuota.objects.filter(deal=deal).values_list("user__username", "own"))
    assert quotas == {f"twice{i}": 0 if i % 2 == 0 else 2 for i in range(10)}

    # Six more buyers at once bring it to eleven: whichever of their tip checks runs first tips it, once.
    barrier = threading.Barrier(6)

    def join(index: int) -> str:
        try:
            barrier.wait()
            return order_place(deal_id=deal.id, buyer=buyers[10 + index], quantity=1).state
        finally:
            _close_connection()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(join, range(6)))
    deal.refresh_from_db()
    assert (deal.sold, deal.takers, deal.state) == (16, 11, DealState.TIPPED)
    assert deal_buyers_counted(deal_id=deal.id) == 11
    assert Order.objects.filter(deal=deal, state=OrderState.CAPTURED).count() == 16
    assert Posting.objects.filter(kind="capture", order__deal=deal).count() == 16
    assert ledger_report().ok


def test_wallet_cannot_be_spent_twice_concurrently(merchant):
    deal = live_deal(merchant, max_quantity=100, tipping_point=100, per_user_limit=100, deal_price=1_000)
    buyer = make_user("double")
    wallet_top_up(user=buyer, amount=5_000)

    def attempt(_: int) -> bool:
        try:
            order_place(deal_id=deal.id, buyer=buyer, quantity=1)
            return True
        except ServiceError:
            return False
        finally:
            _close_connection()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(40)))
    assert outcomes.count(True) == 5
    assert ledger_report().ok


def _counted(runs: list[int]) -> tuple[int, dict[str, int]]:
    runs.append(1)
    return 201, {"n": 1}


def test_concurrent_duplicates_of_one_idempotency_key_run_once(shopper):
    runs: list[int] = []
    barrier = threading.Barrier(8)

    def call(_: int) -> str:
        barrier.wait()
        try:
            status, _body = idempotent_call(
                scope="user:1", key="dup", fingerprint="f", run=lambda: _counted(runs)
            )
            return f"{status}"
        except Conflict as exc:
            return exc.code
        finally:
            _close_connection()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(call, range(8)))
    assert len(runs) == 1
    assert set(outcomes) <= {"201", "idempotency_in_progress"}
    assert connection.vendor == "postgresql"


def test_payouts_racing_refunds_never_leave_the_merchant_owing(merchant):
    from weituan.deals.services import ledger
    from weituan.deals.services.refunds import order_refund
    from weituan.deals.services.vouchers import voucher_redeem
    from weituan.deals.services.wallet import merchant_payout

    deal = live_deal(merchant, max_quantity=40, tipping_point=1, per_user_limit=1, refund_policy="anytime")
    buyers = [make_user(f"back{i}") for i in range(30)]
    orders = []
    for buyer in buyers:
        wallet_top_up(user=buyer, amount=20_000)
        orders.append(order_place(deal_id=deal.id, buyer=buyer, quantity=1))
    deal_tip_check(deal_id=deal.id)
    # A third redeemed (theirs to pay out), the rest refunded while payouts keep being asked for.
    for order in orders[:10]:
        voucher_redeem(code=Voucher.objects.get(order=order).code, by=merchant)
    refunding = orders[10:]
    barrier = threading.Barrier(9)

    def refund(index: int) -> None:
        try:
            barrier.wait()
            for order in refunding[index::8]:
                order_refund(order_id=order.id, by=order.buyer)
        finally:
            _close_connection()

    def payouts(_: int) -> int:
        paid = 0
        try:
            barrier.wait()
            for _ in range(60):
                with contextlib.suppress(ServiceError):  # nothing to pay out yet
                    paid += merchant_payout(merchant=merchant)
        finally:
            _close_connection()
        return paid

    with ThreadPoolExecutor(max_workers=9) as pool:
        refunds = [pool.submit(refund, index) for index in range(8)]
        paying = pool.submit(payouts, 0)
        for future in refunds:
            future.result()
        paid = paying.result()
    share = 9900 - 495
    assert paid == 10 * share  # exactly the redeemed vouchers' shares, whatever the interleaving
    assert ledger.balance_of(ledger.merchant_account(merchant.id, "CNY")) == 0
    assert Voucher.objects.filter(deal=deal, state="refunded").count() == 20
    assert ledger_report().ok
