"""Deal writes whose database connection the database ends mid-way (pg_terminate_backend, as a restart or a
failover does): the request is answered 503 `unavailable` with nothing half-written and no stock held in
the gate, and the same request sent again under its Idempotency-Key does the work once."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.test import RequestFactory

from weituan.accounts.tokens import access_token_issue
from weituan.core.errors import lost_connections_closed
from weituan.core.redis import get_redis, rkey
from weituan.core.testing import CountingWSGI
from weituan.deals.api_orders_fast import with_order_checkout_wsgi
from weituan.deals.models import Deal, Order, OrderState, Posting, Refund, RefundState, Voucher, VoucherState
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services import holds, ledger, orders
from weituan.deals.services.deals import deal_tip_check

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

UNAVAILABLE = {
    "error": "The service is briefly unavailable; try again in a few seconds",
    "code": "unavailable",
}


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


def _cut_once_before(call: Callable[..., Any]) -> Callable[..., Any]:
    """`call`, whose first run finds its connection ended by the database."""
    cut: list[bool] = []

    def cut_first(*args: Any, **kwargs: Any) -> Any:
        if not cut:
            cut.append(True)
            _end_this_connection()
        return call(*args, **kwargs)

    return cut_first


def _gate_sold(deal_id: int) -> int:
    return int(get_redis().hget(rkey("deal", deal_id, "stock"), "sold") or 0)


class _FastPath:
    """POST /api/v1/deals/{id}/orders with a bearer token through the path that answers it in front of
    Django (`api_orders_fast`), as the servers run it."""

    def __init__(self, user: Any) -> None:
        self.django = CountingWSGI()
        self.app = with_order_checkout_wsgi(self.django)
        self.token, _ = access_token_issue(user=user)

    def order(self, deal_id: int, key: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        environ = (
            RequestFactory()
            .post(
                f"/api/v1/deals/{deal_id}/orders",
                data=json.dumps({"quantity": 1}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {self.token}",
                HTTP_IDEMPOTENCY_KEY=key,
            )
            .environ
        )
        started: list[Any] = []
        body = b"".join(self.app(environ, lambda status, pairs: started.extend([status, pairs])))
        # The test reads on this thread's connection before the path's next request would check it
        # (`connection_ready`): one the database ended is replaced here, as that check does.
        lost_connections_closed()
        return int(started[0].split()[0]), json.loads(body), dict(started[1])


class _DjangoPath:
    """The same request through Django's own stack (the API's ninja view)."""

    def __init__(self, user: Any, api_as: Any) -> None:
        self.client = api_as(user)

    def order(self, deal_id: int, key: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        response = self.client.post(
            f"/api/v1/deals/{deal_id}/orders",
            data=json.dumps({"quantity": 1}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        lost_connections_closed()  # as Django's request end does, which the test client leaves out
        return response.status_code, response.json(), dict(response.headers)


@pytest.mark.parametrize("path", [_FastPath, _DjangoPath], ids=["fast", "django"])
def test_a_checkout_whose_connection_ends_mid_transaction_is_a_503_and_its_retry_places_it_once(
    path: Any, own_redis: Any, monkeypatch: Any, shopper: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=1, tipping_point=3)
    fund(shopper)
    buyer = path(shopper) if path is _FastPath else path(shopper, api_as)
    postings = Posting.objects.count()
    # Inside the order's transaction, once its stock is taken in the gate: the batch of its writes.
    monkeypatch.setattr(orders, "_hold_batched", _cut_once_before(orders._hold_batched))

    status, body, headers = buyer.order(deal.id, "buy-1")

    assert (status, body, headers["Retry-After"]) == (503, UNAVAILABLE, "5")
    assert not Order.objects.filter(deal=deal).exists()
    assert (Deal.objects.get(id=deal.id).sold, _gate_sold(deal.id)) == (0, 0)
    assert Posting.objects.count() == postings
    assert wallet_of(user=shopper).held == 0

    retried = buyer.order(deal.id, "buy-1")
    again = buyer.order(deal.id, "buy-1")

    assert (retried[0], again[0]) == (201, 201)
    assert retried[1]["id"] == again[1]["id"]
    assert list(Order.objects.filter(deal=deal).values_list("id", flat=True)) == [retried[1]["id"]]
    assert (Deal.objects.get(id=deal.id).sold, _gate_sold(deal.id)) == (1, 1)
    assert wallet_of(user=shopper).held == deal.deal_price
    report = ledger_report()
    assert report.ok, report.problems()


@pytest.mark.parametrize("path", [_FastPath, _DjangoPath], ids=["fast", "django"])
def test_a_checkout_whose_answer_is_lost_after_its_commit_is_answered_by_its_retry(
    path: Any, own_redis: Any, monkeypatch: Any, shopper: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    """The order committed, then the connection ended before the answer was made: the buyer is told to
    try again (the JSON 503, not a server failure once the request's own clean-up meets the ended
    connection too), and the retry under the same key is answered with that order, not a second one."""
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=3)
    fund(shopper)
    buyer = path(shopper) if path is _FastPath else path(shopper, api_as)

    def cut_after_commit(order: Any, **kwargs: Any) -> bool:
        # What the order does once committed (is it paid at once?), on a connection ended meanwhile.
        _end_this_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return False

    monkeypatch.setattr(orders, "_deal_settles_at_once", cut_after_commit)
    status, body, headers = buyer.order(deal.id, "k")
    monkeypatch.undo()

    assert (status, body, headers["Retry-After"]) == (503, UNAVAILABLE, "5")
    (placed,) = Order.objects.filter(deal=deal)
    retried = buyer.order(deal.id, "k")
    assert (retried[0], retried[1]["id"]) == (201, placed.id)
    assert Order.objects.filter(deal=deal).count() == 1
    assert (Deal.objects.get(id=deal.id).sold, _gate_sold(deal.id)) == (1, 1)
    assert wallet_of(user=shopper).held == deal.deal_price
    report = ledger_report()
    assert report.ok, report.problems()


def test_a_cancel_whose_connection_ends_is_a_503_and_its_retry_cancels(
    monkeypatch: Any, shopper: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=1, tipping_point=3)
    fund(shopper)
    client = api_as(shopper)
    order = orders.order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    # The cancel's first read, outside any transaction: Django keeps the ended connection until the
    # request ends.
    monkeypatch.setattr(holds, "order_for_buyer", _cut_once_before(holds.order_for_buyer))

    cut = client.post(f"/api/v1/orders/{order.id}/cancel", HTTP_IDEMPOTENCY_KEY="c-1")
    assert (cut.status_code, cut.json()) == (503, UNAVAILABLE)
    assert Order.objects.get(id=order.id).state == OrderState.AUTHORIZED

    retried = client.post(f"/api/v1/orders/{order.id}/cancel", HTTP_IDEMPOTENCY_KEY="c-1")

    assert retried.status_code == 200, retried.content
    assert (retried.json()["state"], retried.json()["end_reason"]) == ("voided", "cancelled")
    assert (
        client.post(f"/api/v1/orders/{order.id}/cancel", HTTP_IDEMPOTENCY_KEY="c-1").json() == retried.json()
    )
    assert wallet_of(user=shopper).held == 0
    assert Deal.objects.get(id=deal.id).sold == 0
    report = ledger_report()
    assert report.ok, report.problems()


def test_a_refund_whose_connection_ends_is_a_503_and_its_retry_refunds_once(
    monkeypatch: Any, shopper: Any, make_live_deal: Any, fund: Any, api_as: Any
) -> None:
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=1, refund_policy="anytime")
    fund(shopper)
    client = api_as(shopper)
    order = orders.order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    orders.order_capture(order_id=order.id)
    paid = wallet_of(user=shopper).available
    # The refund's posting, in the transaction that completes it.
    monkeypatch.setattr(ledger, "posting_write", _cut_once_before(ledger.posting_write))

    cut = client.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="r-1")
    assert (cut.status_code, cut.json()) == (503, UNAVAILABLE)
    assert Order.objects.get(id=order.id).state == OrderState.CAPTURED
    assert wallet_of(user=shopper).available == paid

    retried = client.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="r-1")

    assert retried.status_code == 200, retried.content
    assert retried.json()["state"] == "refunded"
    assert (
        client.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="r-1").json() == retried.json()
    )
    assert list(Refund.objects.filter(order=order).values_list("state", flat=True)) == [RefundState.COMPLETED]
    assert list(Voucher.objects.filter(order=order).values_list("state", flat=True)) == [
        VoucherState.REFUNDED
    ]
    assert wallet_of(user=shopper).available == paid + deal.deal_price
    report = ledger_report()
    assert report.ok, report.problems()


def test_a_card_refund_whose_connection_ends_after_the_provider_refunded_is_refunded_once(
    provider: Any, monkeypatch: Any, shopper: Any, make_live_deal: Any, api_as: Any
) -> None:
    """The provider has refunded; the connection ends before the refund is recorded. The retry asks the
    provider again under the refund's key (the provider refunds a key once) and records it once."""
    fake, _ = provider
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=1, refund_policy="anytime")
    order = orders.order_place(deal_id=deal.id, buyer=shopper, quantity=1, gateway="card")
    deal_tip_check(deal_id=deal.id)
    assert Order.objects.get(id=order.id).state == OrderState.CAPTURED
    client = api_as(shopper)
    monkeypatch.setattr(ledger, "posting_write", _cut_once_before(ledger.posting_write))

    cut = client.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="r-1")
    assert (cut.status_code, cut.json()) == (503, UNAVAILABLE)
    assert fake.holds[order.payment_ref]["refunded"] == deal.deal_price
    assert Order.objects.get(id=order.id).state == OrderState.CAPTURED

    retried = client.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="r-1")

    assert retried.status_code == 200, retried.content
    assert retried.json()["state"] == "refunded"
    assert len({key for _, key, _ in fake.refunds()}) == 1  # one refund key, asked twice
    assert fake.holds[order.payment_ref]["refunded"] == deal.deal_price
    assert Posting.objects.filter(order=order, kind="refund").count() == 1
    report = ledger_report()
    assert report.ok, report.problems()
