"""One Idempotency-Key names one request of its sender, refunds included: a key a refund was asked for with
(which the refund keeps on its row, even once no idempotency record is left of it) is refused for an
order, on the checkout's own statement and in front of Django alike; and a key an order was placed with
is refused for a refund. Both are refused as any reused key is: 422 `idempotency_mismatch`, nothing
written."""

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from weituan.accounts.tokens import access_token_issue
from weituan.core.errors import ValidationFailed
from weituan.core.models import IdempotencyRecord
from weituan.deals.api_orders_fast import with_order_checkout_wsgi
from weituan.deals.models import Deal, Order, Refund, Voucher, VoucherState
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.tests.test_orders_fast import CountingWSGI, _post
from weituan.deals.tests.test_vouchers_and_referrals import paid_order

pytestmark = pytest.mark.django_db


def _mismatch(answer: Any) -> None:
    assert answer.status_code == 422, answer.content
    assert answer.json() == {
        "error": "This Idempotency-Key was already used for a different request",
        "code": "idempotency_mismatch",
    }


def _buy(api: Any, deal: Deal, key: str) -> Any:
    return api.post(
        f"/api/v1/deals/{deal.id}/orders",
        {"quantity": 1},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def _nothing_bought(deal: Deal) -> tuple[int, int]:
    return Order.objects.filter(deal=deal).count(), Deal.objects.get(id=deal.id).sold


def test_a_key_a_refund_was_asked_with_is_refused_for_an_order(
    api_as, shopper, outsider, make_live_deal, fund
):
    order = paid_order(make_live_deal(title="退款的", tipping_point=1), shopper, fund)
    api = api_as(shopper)
    refunded = api.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (refunded.status_code, refunded.json()["state"]) == (200, "refunded")
    # Only the refund's row keeps the key now (a record may be gone, or never stored: a refund first
    # answered `refund_pending` stores none).
    IdempotencyRecord.objects.filter(key="refund-1").delete()
    assert Refund.objects.filter(order=order, client_key="refund-1", requested_by=shopper).exists()

    other = make_live_deal(title="另一单", tipping_point=5)
    before = _nothing_bought(other)
    _mismatch(_buy(api, other, "refund-1"))
    with pytest.raises(ValidationFailed) as refused:
        order_place(deal_id=other.id, buyer=shopper, quantity=1, client_key="refund-1")
    assert refused.value.code == "idempotency_mismatch"
    assert _nothing_bought(other) == before
    # The key still names the refund: its retry is answered with the refunded order.
    again = api.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (again.status_code, again.json()) == (200, refunded.json())
    # Another buyer's key is their own, and the buyer's next key buys.
    fund(outsider)
    assert _buy(api_as(outsider), other, "refund-1").status_code == 201
    assert _buy(api, other, "order-1").status_code == 201


def test_in_front_of_django_too_and_in_the_same_statement(shopper, make_live_deal, fund):
    order = paid_order(make_live_deal(title="退款的", tipping_point=1), shopper, fund)
    raw, _ = access_token_issue(user=shopper)
    django = CountingWSGI()
    fast = with_order_checkout_wsgi(django)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    refunded = _post(
        django, f"/api/v1/orders/{order.id}/refund", {}, **bearer, HTTP_IDEMPOTENCY_KEY="refund-1"
    )
    assert refunded[0] == "200 OK"
    IdempotencyRecord.objects.filter(key="refund-1").delete()
    other = make_live_deal(title="另一单", tipping_point=5)
    path = f"/api/v1/deals/{other.id}/orders"
    calls = django.calls
    with CaptureQueriesContext(connection) as captured:
        status, _headers, body = _post(fast, path, {"quantity": 1}, **bearer, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert django.calls == calls  # answered in front of Django
    assert (status[:4], json.loads(body)["code"]) == ("422 ", "idempotency_mismatch")
    # The refunds' keys were looked at inside the statement that reads the token and the deal, and in
    # no statement of their own.
    statements = [query["sql"] for query in captured.captured_queries]
    first = [sql for sql in statements if "accounts_accesstoken" in sql]
    assert len(first) == 1 and '"deals_refund" f' in first[0], statements
    assert [sql for sql in statements if "deals_refund" in sql] == first
    assert _nothing_bought(other) == (0, 0)
    status, _headers, _body = _post(fast, path, {"quantity": 1}, **bearer, HTTP_IDEMPOTENCY_KEY="order-1")
    assert status == "201 Created"


def test_a_refund_first_answered_pending_keeps_its_key_from_an_order(
    provider, api_as, shopper, make_live_deal
):
    fake, _ = provider
    deal = make_live_deal(title="卡付", tipping_point=1)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1, gateway="card")
    deal_tip_check(deal_id=deal.id)
    api = api_as(shopper)
    fake.outage = 500
    pending = api.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (pending.status_code, pending.json()["code"]) == (503, "refund_pending")
    assert not IdempotencyRecord.objects.filter(key="refund-1").exists()
    other = make_live_deal(title="另一单", tipping_point=5)
    for gateway in ("card", "wallet"):
        answer = api.post(
            f"/api/v1/deals/{other.id}/orders",
            {"quantity": 1, "gateway": gateway},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="refund-1",
        )
        _mismatch(answer)
    assert _nothing_bought(other) == (0, 0)
    assert [path for path, _key in fake.calls if path == "/authorizations"] == ["/authorizations"]


def test_a_key_an_order_was_placed_with_is_refused_for_a_refund(api_as, shopper, make_live_deal, fund):
    paid = paid_order(make_live_deal(title="已付", tipping_point=1), shopper, fund)
    api = api_as(shopper)
    placed = _buy(api, make_live_deal(title="新单", tipping_point=5), "order-1")
    assert placed.status_code == 201
    before = list(Voucher.objects.filter(order=paid).values_list("id", "state"))
    _mismatch(api.post(f"/api/v1/orders/{paid.id}/refund", HTTP_IDEMPOTENCY_KEY="order-1"))
    assert not Refund.objects.filter(order=paid).exists()
    assert list(Voucher.objects.filter(order=paid).values_list("id", "state")) == before
    assert {state for _id, state in before} == {VoucherState.VALID}
    # The order's key still names the order, and the refund goes through under a key of its own.
    assert _buy(api, Order.objects.get(id=placed.json()["id"]).deal, "order-1").json() == placed.json()
    assert api.post(f"/api/v1/orders/{paid.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-2").status_code == 200


def test_a_refund_asked_for_by_an_operator_keeps_the_key_the_operators(
    api_as, shopper, operator, make_live_deal, fund
):
    paid = paid_order(make_live_deal(title="代退", tipping_point=1), shopper, fund)
    refunded = api_as(operator).post(f"/api/v1/orders/{paid.id}/refund", HTTP_IDEMPOTENCY_KEY="desk-1")
    assert refunded.status_code == 200, refunded.content
    IdempotencyRecord.objects.filter(key="desk-1").delete()
    # The buyer never sent that key: their order under it is theirs to place.
    assert _buy(api_as(shopper), make_live_deal(title="新单", tipping_point=5), "desk-1").status_code == 201
