"""A sale whose Redis restarts empty (no persistence) while buyers check out at once: the orders that meet
it down are refused with nothing taken and sent again, the stock gate is rebuilt from the database, and
the deal sells exactly its units, each buyer within their limit, with the ledger whole once it closes."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from weituan.core.errors import STORE_OUTAGES
from weituan.core.testing import make_user
from weituan.deals.errors import LimitReached, SoldOut
from weituan.deals.models import Deal, DealState, Order, OrderState
from weituan.deals.queries import ledger_report
from weituan.deals.services.deals import deals_sweep
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

UNITS, BUYERS, ATTEMPTS = 24, 32, 2


def test_a_sale_through_a_redis_restart_sells_every_unit_once(
    own_redis: Any, clock: Any, make_live_deal: Any
) -> None:
    deal = make_live_deal(max_quantity=UNITS, per_user_limit=1, tipping_point=UNITS // 2)
    buyers = [make_user(f"buyer{n}") for n in range(BUYERS)]
    for buyer in buyers:
        wallet_top_up(user=buyer, amount=100_000)
    outcomes: dict[str, int] = {"placed": 0, "sold_out": 0, "limit": 0, "unavailable": 0}
    counted = threading.Lock()
    met_down, restarted = threading.Event(), threading.Event()

    def count(outcome: str) -> None:
        with counted:
            outcomes[outcome] += 1

    def shop(buyer: Any) -> None:
        # Each buyer asks twice (a double tap); an order refused because a store is away is sent again
        # under its key, as a client told to retry does.
        try:
            for attempt in range(ATTEMPTS):
                while True:
                    try:
                        order_place(deal_id=deal.id, buyer=buyer, quantity=1, client_key=f"k{attempt}")
                        count("placed")
                    except SoldOut:
                        count("sold_out")
                    except LimitReached:
                        count("limit")
                    except STORE_OUTAGES:
                        count("unavailable")
                        met_down.set()
                        restarted.wait(5)
                        time.sleep(0.01)
                        continue
                    break
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        running = [pool.submit(shop, buyer) for buyer in buyers]
        deadline = time.monotonic() + 30
        while Deal.objects.get(id=deal.id).sold < UNITS // 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        own_redis.stop()
        met_down.wait(10)  # orders meet it down meanwhile
        own_redis.start()  # empty
        restarted.set()
        for done in running:
            done.result()

    sold = Deal.objects.get(id=deal.id)
    placed = list(Order.objects.filter(deal=deal).values_list("buyer_id", flat=True))
    assert (sold.sold, len(placed), len(set(placed))) == (UNITS, UNITS, UNITS)
    assert outcomes["placed"] == UNITS
    assert outcomes["unavailable"] > 0
    assert outcomes["sold_out"] + outcomes["limit"] == BUYERS * ATTEMPTS - UNITS
    assert sold.state == DealState.SOLD_OUT

    clock.forward((deal.ends_at - timezone.now()).total_seconds() + 1)
    deals_sweep()

    assert Deal.objects.get(id=deal.id).state == DealState.CLOSED
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.CAPTURED}
    report = ledger_report()
    assert report.ok, report.problems()
