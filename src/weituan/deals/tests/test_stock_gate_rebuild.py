"""The stock gate flushed from Redis mid-sale is rebuilt once, by one buyer, while the burst of buyers
finding it missing waits for it: the deal sells exactly its units, no buyer who already holds one gets
another, no other buyer is refused while a unit is left, and the ledger sums to zero (PostgreSQL + a
Redis of the test's own)."""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from weituan.core.errors import ServiceError
from weituan.core.redis import get_redis, rkey
from weituan.core.testing import make_user
from weituan.deals.errors import SoldOut
from weituan.deals.models import Deal, DealState, Order, OrderState
from weituan.deals.queries import ledger_report
from weituan.deals.services import stock_rebuild
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

UNITS, EARLY, LATE = 30, 6, 70


def _gate(deal_id: int) -> dict[Any, Any]:
    return get_redis().hgetall(rkey("deal", deal_id, "stock"))


def _counting_rebuilds(monkeypatch: Any) -> Counter[str]:
    """Count the rebuilds that read the database, and the ones that wrote the gate; each reads as a deal
    with many buyers would, slowly, so that the burst arrives while it does."""
    counted: Counter[str] = Counter()
    lock = threading.Lock()
    real = stock_rebuild._rebuild_if_missing

    def rebuild(*, deal_id: int, token: str) -> int:
        time.sleep(0.05)
        wrote = real(deal_id=deal_id, token=token)
        with lock:
            counted["read"] += 1
            counted["wrote"] += wrote
        return wrote

    monkeypatch.setattr(stock_rebuild, "_rebuild_if_missing", rebuild)
    return counted


def _at_once(calls: list[Any]) -> list[str]:
    barrier = threading.Barrier(len(calls))

    def attempt(call: Any) -> str:
        try:
            barrier.wait()
            call()
            return "ok"
        except ServiceError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(attempt, calls))


def test_a_flushed_gate_is_rebuilt_once_and_the_burst_sells_exactly_the_units(
    own_redis: Any, make_live_deal: Any, monkeypatch: Any
) -> None:
    deal = make_live_deal(max_quantity=UNITS, per_user_limit=1, tipping_point=UNITS)
    early = [make_user(f"early{n}") for n in range(EARLY)]
    late = [make_user(f"late{n}") for n in range(LATE)]
    for buyer in early + late:
        wallet_top_up(user=buyer, amount=100_000)
    for buyer in early:
        order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    assert _gate(deal.id) == {b"released": str(UNITS).encode(), b"sold": str(EARLY).encode()}

    get_redis().flushdb()  # a Redis restarted without persistence
    rebuilds = _counting_rebuilds(monkeypatch)
    # Everyone at once: the buyers who already hold their one unit ask again, the others for the first
    # time.
    buyers = early + late
    outcomes = _at_once(
        [lambda buyer=buyer: order_place(deal_id=deal.id, buyer=buyer, quantity=1) for buyer in buyers]
    )

    assert rebuilds == {"read": 1, "wrote": 1}
    # Those holding their unit are refused it again: for their limit, or, once the deal has sold out,
    # for that (the gate looks at the units left first).
    assert set(outcomes[:EARLY]) <= {"per_user_limit", "sold_out"}
    assert Counter(outcomes[EARLY:]) == {"ok": UNITS - EARLY, "sold_out": LATE - (UNITS - EARLY)}
    deal.refresh_from_db()
    assert (deal.sold, deal.takers, deal.state) == (UNITS, UNITS, DealState.SOLD_OUT)
    assert Order.objects.filter(deal=deal).count() == UNITS
    assert Order.objects.filter(deal=deal, state=OrderState.CAPTURED).count() == UNITS
    assert set(Order.objects.filter(deal=deal).values_list("buyer_id", flat=True)) == {
        buyer.id for buyer, outcome in zip(buyers, outcomes, strict=True) if outcome == "ok"
    } | {buyer.id for buyer in early}
    assert _gate(deal.id) == {b"released": str(UNITS).encode(), b"sold": str(UNITS).encode()}
    assert ledger_report().ok


def test_a_rebuilder_that_died_holding_the_lock_is_taken_over(
    own_redis: Any, make_live_deal: Any, monkeypatch: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=5)
    buyer = make_user("after_crash")
    wallet_top_up(user=buyer, amount=100_000)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    get_redis().flushdb()
    # A rebuilder took the lock and died before writing the gate: the lock lapses, and the next buyer
    # rebuilds it from the database (their first unit counted) and is not refused.
    monkeypatch.setattr(stock_rebuild, "REBUILD_LOCK_MS", 200)
    get_redis().set(rkey("deal", deal.id, "rebuild"), "a-dead-process", px=200)
    rebuilds = _counting_rebuilds(monkeypatch)
    started = time.monotonic()
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    assert time.monotonic() - started < stock_rebuild.REBUILD_WAIT
    assert rebuilds == {"read": 1, "wrote": 1}
    assert _gate(deal.id) == {b"released": b"5", b"sold": b"2"}
    assert get_redis().hget(rkey("deal", deal.id, "quota"), f"o:{buyer.id}") == b"2"
    assert Deal.objects.get(id=deal.id).sold == 2
    assert ledger_report().ok


def test_a_gate_that_never_comes_back_is_gone_past_to_the_database(
    own_redis: Any, make_live_deal: Any, monkeypatch: Any
) -> None:
    deal = make_live_deal(max_quantity=2, per_user_limit=2, tipping_point=2)
    buyer = make_user("no_gate")
    wallet_top_up(user=buyer, amount=100_000)
    get_redis().flushdb()
    # Someone holds the lock for longer than a buyer waits: the buyer's order goes to the database's own
    # guard, which sells what is there and refuses what is not.
    monkeypatch.setattr(stock_rebuild, "REBUILD_WAIT", 0.2)
    get_redis().set(rkey("deal", deal.id, "rebuild"), "a-slow-process", px=60_000)
    order_place(deal_id=deal.id, buyer=buyer, quantity=2)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    assert _gate(deal.id) == {}
    assert Deal.objects.get(id=deal.id).sold == 2
    assert ledger_report().ok
