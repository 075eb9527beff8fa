"""Orders and deals meeting faults: a database connection ended under the checkout, a Redis stock gate
that counts units a stopped process took, a Redis restarted mid-sale."""

import json
from typing import Any

import pytest
from django.db import connection, connections
from django.test import RequestFactory

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import CountingWSGI, make_user
from weituan.deals.api_orders_fast import with_order_checkout_wsgi
from weituan.deals.errors import LimitReached, SoldOut
from weituan.deals.models import Deal, DealState, Order, OrderState
from weituan.deals.services.deals import deals_sweep
from weituan.deals.services.orders import order_place
from weituan.deals.services.stock import stock_gate_take


def _post(app: Any, path: str, body: Any, **headers: Any) -> tuple[str, dict[str, Any]]:
    environ = (
        RequestFactory().post(path, data=json.dumps(body), content_type="application/json", **headers).environ
    )
    started: list[Any] = []
    answer = b"".join(app(environ, lambda status, pairs: started.extend([status, pairs])))
    return started[0], json.loads(answer)


def _end_this_connection() -> None:
    """What an operator's pg_terminate_backend (or a database restart) does to this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_order_after_the_database_ended_the_connection_is_placed_not_a_500(
    shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    django = CountingWSGI()
    fast = with_order_checkout_wsgi(django)
    deal = make_live_deal(max_quantity=10, per_user_limit=5)
    fund(shopper)
    raw, _ = access_token_issue(user=shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    first, _ = _post(fast, path, {"quantity": 1}, HTTP_IDEMPOTENCY_KEY="one", **headers)
    assert first == "201 Created"

    _end_this_connection()
    status, body = _post(fast, path, {"quantity": 1}, HTTP_IDEMPOTENCY_KEY="two", **headers)

    assert (status, body.get("code")) == ("201 Created", None)
    assert django.calls == 0
    assert Order.objects.filter(deal=deal, buyer=shopper).count() == 2
    assert Deal.objects.get(id=deal.id).sold == 2


def _buy(deal: Any, buyer: Any) -> Order:
    return order_place(deal_id=deal.id, buyer=buyer, quantity=1)


@pytest.mark.django_db
def test_a_gate_left_counting_a_stopped_process_s_unit_sells_again_after_the_sweep(
    own_redis: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(max_quantity=2, per_user_limit=1, tipping_point=1)
    late = make_user("latecomer")
    for buyer in (shopper, late):
        fund(buyer)
    # A server killed between its take in Redis and its order: the gate counts a unit nobody bought.
    stock_gate_take(deal=deal, user_id=outsider.id, own=1, gifts=0)
    _buy(deal, shopper)
    with pytest.raises(SoldOut):
        _buy(deal, late)
    deal.refresh_from_db()
    assert (deal.sold, deal.released) == (1, 2)
    assert deal.state in (DealState.LIVE, DealState.TIPPED)  # on sale, with a unit free

    counts = deals_sweep()

    order = _buy(deal, late)
    assert counts.get("gates_unstuck") == 1
    assert (order.buyer_id, order.quantity) == (late.id, 1)
    assert Deal.objects.get(id=deal.id).sold == 2
    assert deals_sweep()["gates_unstuck"] == 0


@pytest.mark.django_db
def test_a_buyer_whose_unit_a_stopped_process_took_in_the_gate_may_still_buy(
    own_redis: Any, shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=1, tipping_point=3)
    fund(shopper)
    stock_gate_take(deal=deal, user_id=shopper.id, own=1, gifts=0)  # then the process died

    order = _buy(deal, shopper)

    assert (order.quantity, order.state) == (1, OrderState.AUTHORIZED)
    with pytest.raises(LimitReached):
        _buy(deal, shopper)
    assert Order.objects.filter(deal=deal, buyer=shopper).count() == 1
    assert Deal.objects.get(id=deal.id).sold == 1


@pytest.mark.django_db
def test_a_redis_restarted_mid_sale_rebuilds_the_gate_from_the_database(
    own_redis: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(max_quantity=2, per_user_limit=1, tipping_point=1)
    late = make_user("latecomer")
    for buyer in (shopper, outsider, late):
        fund(buyer)
    _buy(deal, shopper)

    own_redis.restart()  # no persistence: the counters are gone

    with pytest.raises(LimitReached):
        _buy(deal, shopper)
    _buy(deal, outsider)
    with pytest.raises(SoldOut):
        _buy(deal, late)
    assert Deal.objects.get(id=deal.id).sold == 2
    assert sorted(Order.objects.filter(deal=deal).values_list("buyer_id", flat=True)) == sorted(
        [shopper.id, outsider.id]
    )
