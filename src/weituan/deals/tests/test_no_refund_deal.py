"""A deal sold with a refund window of no days takes no refunds: its page says so in the reader's
language, my orders offers no refund, and a refund asked for anyway is refused in those words, with
nothing returned."""

import pytest
from django.test import Client

from weituan.deals.models import Order, OrderState, Refund, VoucherState
from weituan.deals.queries import wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def _browser(user, language):
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    browser.force_login(user)
    return browser


def test_a_deal_with_no_refund_days_takes_no_refunds(api_as, make_live_deal, shopper, fund):
    deal = make_live_deal(tipping_point=1, refund_policy="window", refund_window_days=0)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    assert Order.objects.get(id=order.id).state == OrderState.CAPTURED
    wallet = wallet_of(user=shopper, currency="CNY")

    english = _browser(shopper, "en")
    chinese = _browser(shopper, "zh-hans")
    assert "no refunds" in english.get(f"/deals/{deal.id}/").content.decode()
    assert "refund within 0 days" not in english.get(f"/deals/{deal.id}/").content.decode()
    assert "不可退款" in chinese.get(f"/deals/{deal.id}/").content.decode()
    orders = english.get("/me/orders/").content.decode()
    assert f"/me/orders/{order.id}/refund" not in orders

    refused = api_as(shopper).post(f"/api/v1/orders/{order.id}/refund", content_type="application/json")
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "This deal takes no refunds",
        "code": "refund_not_allowed",
        "reason": "window_closed",
        "refund_window_days": 0,
    }
    english.post(f"/me/orders/{order.id}/refund")
    assert "This deal takes no refunds." in english.get("/me/orders/").content.decode()
    chinese.post(f"/me/orders/{order.id}/refund")
    assert "本团购不可退款。" in chinese.get("/me/orders/").content.decode()

    assert not Refund.objects.exists()
    assert set(order.vouchers.values_list("state", flat=True)) == {VoucherState.VALID}
    assert wallet_of(user=shopper, currency="CNY") == wallet


def test_the_editor_says_what_a_refund_window_of_no_days_means(merchant):
    editor = _browser(merchant, "zh-hans").get("/merchant/deals/new").content.decode()
    assert "付款后可申请退款的天数（0 表示不可退款）" in editor
    assert "(0: no refunds)" in _browser(merchant, "en").get("/merchant/deals/new").content.decode()
