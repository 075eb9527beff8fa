"""Every native write endpoint keeps its Idempotency-Key: a replay answers the first response and writes
nothing more; the same key for a different request is refused with `idempotency_mismatch`."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.deals.models import Deal, Entry, Order, Posting, Voucher, VoucherState
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.tests.test_vouchers_and_referrals import paid_order

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (Deal.objects.count(), Order.objects.count(), Posting.objects.count(), Entry.objects.count())


def _twice(call: Callable[[str], Any], key: str) -> Any:
    """Send the request with `key`, then again; the second answer is the first, and nothing changed."""
    first = call(key)
    assert first.status_code < 300, first.content
    before = (_counts(), list(Voucher.objects.values_list("id", "state")))
    again = call(key)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert (_counts(), list(Voucher.objects.values_list("id", "state"))) == before
    return first


def _mismatch(response: Any) -> None:
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "idempotency_mismatch"


DEAL = {
    "title": "双人火锅套餐",
    "list_price": 20000,
    "deal_price": 9900,
    "tipping_point": 1,
    "max_quantity": 10,
    "per_user_limit": 2,
    "starts_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
    "ends_at": (timezone.now() + timedelta(days=1)).isoformat(),
}


def test_create_and_publish_a_deal(api_as: Any, merchant: Any) -> None:
    api = api_as(merchant)

    def create(key: str, title: str = DEAL["title"]) -> Any:  # type: ignore[assignment]
        return api.post(
            "/api/v1/deals",
            {**DEAL, "title": title},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    deal_id = _twice(create, "create-1").json()["id"]
    _mismatch(create("create-1", title="别的套餐"))
    assert Deal.objects.count() == 1

    def publish(key: str, target: Any = deal_id) -> Any:
        return api.post(f"/api/v1/deals/{target}/publish", HTTP_IDEMPOTENCY_KEY=key)

    assert _twice(publish, "publish-1").json()["state"] in ("live", "scheduled")
    other = create("create-2", title="第二个套餐").json()["id"]
    _mismatch(publish("publish-1", target=other))
    assert Deal.objects.get(id=other).state == "draft"


def test_top_up_refund_and_redeem(
    api_as: Any, shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    buyer, seller = api_as(shopper), api_as(merchant)

    def top_up(key: str, amount: int = 5000) -> Any:
        return buyer.post(
            "/api/v1/wallet/top_up",
            {"amount": amount},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    balance = _twice(top_up, "top-up-1").json()
    _mismatch(top_up("top-up-1", amount=6000))
    assert buyer.get("/api/v1/wallet").json() == balance

    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order = paid_order(deal, shopper, fund, quantity=2)
    deal_tip_check(deal_id=deal.id)
    first_code, second_code = order.vouchers.order_by("id").values_list("code", flat=True)

    def redeem(key: str, code: str = first_code) -> Any:
        return seller.post(f"/api/v1/vouchers/{code}/redeem", HTTP_IDEMPOTENCY_KEY=key)

    _twice(redeem, "redeem-1")
    _mismatch(redeem("redeem-1", code=second_code))
    assert Voucher.objects.get(code=second_code).state == VoucherState.VALID

    def refund(key: str, order_id: int = order.id) -> Any:
        return buyer.post(f"/api/v1/orders/{order_id}/refund", HTTP_IDEMPOTENCY_KEY=key)

    refunded = _twice(refund, "refund-1").json()
    assert Voucher.objects.get(code=second_code).state == VoucherState.REFUNDED
    assert int(refunded["id"]) == order.id
    _mismatch(refund("refund-1", order_id=order.id + 1))
