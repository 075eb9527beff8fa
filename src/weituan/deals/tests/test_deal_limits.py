"""A deal's figures are bounded where selling, settling and showing it still work: a price, quantity or
number of days beyond them is refused with its problem code (beside its field in the editor), and
nothing is saved; a deal at the bounds is sold, settled and listed."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from weituan.deals.models import Deal, Order, Voucher
from weituan.deals.services.deals import (
    PRICE_MAX,
    QUANTITY_MAX,
    REFUND_WINDOW_DAYS_MAX,
    VOUCHER_VALID_DAYS_MAX,
    deal_tip_check,
)
from weituan.deals.services.orders import order_place
from weituan.deals.tests.conftest import live_deal

pytestmark = pytest.mark.django_db


def _api_deal(**overrides):
    now = timezone.now()
    return {
        "title": "单人下午茶",
        "list_price": 8800,
        "deal_price": 3900,
        "max_quantity": 9,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        **overrides,
    }


EDITOR_FORM = {
    "title": "洗车",
    "currency": "CNY",
    "list_price": "100",
    "deal_price": "30",
    "tipping_point": "1",
    "max_quantity": "50",
    "per_user_limit": "1",
    "gift_limit": "0",
    "starts_at": "2030-01-01T10:00",
    "ends_at": "2030-01-05T10:00",
    "voucher_valid_days": "30",
    "refund_policy": "window",
    "refund_window_days": "7",
}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"list_price": 2**63, "deal_price": 3900}, "list_price_range"),
        ({"list_price": PRICE_MAX + 1}, "list_price_range"),
        ({"max_quantity": 2**31}, "max_quantity_range"),
        ({"per_user_limit": 2**40}, "limits_range"),
        ({"gift_limit": 2**63}, "limits_range"),
    ],
)
def test_the_api_refuses_figures_beyond_the_bounds(api_as, merchant, overrides, code):
    response = api_as(merchant).post(
        "/api/v1/deals", data=json.dumps(_api_deal(**overrides)), content_type="application/json"
    )
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "invalid_deal"
    assert response.json()["problem_codes"] == [code]
    assert not Deal.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        ("list_price", str(2**63), "确保该值小于或等于10000000。"),  # yuan: ¥10,000,000.00
        ("max_quantity", str(2**31), "最多售出件数最多为 1,000,000,000。"),
        ("voucher_valid_days", "1000000000", "券的有效期为 1 到 3650 天。"),
        ("refund_window_days", "1000000000", "退款期限为 0 到 365 天。"),
    ],
)
def test_the_editor_shows_a_figure_beyond_the_bounds_beside_its_field(merchant, field, value, sentence):
    seller = Client()
    seller.force_login(merchant)
    response = seller.post(
        "/merchant/deals/new", {**EDITOR_FORM, field: value}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 200
    assert sentence in response.content.decode()
    assert not Deal.objects.exists()


def test_a_deal_at_the_bounds_is_sold_settled_and_listed(merchant, shopper, fund):
    deal = live_deal(
        merchant,
        list_price=PRICE_MAX,
        deal_price=900,
        tipping_point=1,
        max_quantity=QUANTITY_MAX,
        per_user_limit=QUANTITY_MAX,
        gift_limit=QUANTITY_MAX,
        voucher_valid_days=VOUCHER_VALID_DAYS_MAX,
        refund_window_days=REFUND_WINDOW_DAYS_MAX,
    )
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert (order.state, order.amount) == ("captured", 1800)
    assert order.captured_at is not None
    expiry = order.captured_at + timedelta(days=VOUCHER_VALID_DAYS_MAX)
    assert [voucher.expires_at.date() for voucher in Voucher.objects.filter(order=order)] == [
        expiry.date()
    ] * 2
    buyer = Client()
    buyer.force_login(shopper)
    page = buyer.get("/me/orders/")
    assert page.status_code == 200
    assert f"/me/orders/{order.id}/refund" in page.content.decode()
    assert Order.objects.count() == 1
