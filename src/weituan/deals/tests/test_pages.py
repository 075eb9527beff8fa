import pytest
from django.test import Client

from weituan.deals.facade import deal_card, deal_card_html
from weituan.deals.models import Deal, Order, OrderState, Voucher, VoucherState
from weituan.deals.services.deals import deal_tip_check

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_shopper_checkout_vouchers_and_qr(shopper, outsider, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1)
    fund(shopper, 50_000)
    browser = logged_in(shopper)
    page = browser.get(f"/deals/{deal.id}/")
    assert page.status_code == 200
    assert "双人火锅套餐" in page.content.decode()
    response = browser.post(
        f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "9900", "checkout_token": "t-1"}
    )
    assert response.status_code == 302
    # The same form submitted twice (a double click) buys once.
    browser.post(
        f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "9900", "checkout_token": "t-1"}
    )
    assert Order.objects.filter(buyer=shopper).count() == 1
    deal_tip_check(deal_id=deal.id)
    assert "captured" in browser.get("/me/orders/").content.decode()
    voucher = Voucher.objects.get()
    vouchers_page = browser.get("/me/vouchers/").content.decode()
    assert voucher.code[:4] in vouchers_page
    png = browser.get(f"/vouchers/{voucher.code}.png")
    assert (png.status_code, png["Content-Type"], png.content[:4]) == (200, "image/png", b"\x89PNG")
    svg = browser.get(f"/vouchers/{voucher.code}.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    # Someone else cannot see the holder's QR code.
    assert logged_in(outsider).get(f"/vouchers/{voucher.code}.png").status_code == 404


def test_deal_page_states_its_refund_policy_and_the_wallet_in_money(shopper, make_live_deal, fund):
    deal = make_live_deal(refund_window_days=14)
    fund(shopper, 123_456)
    browser = logged_in(shopper)
    english = browser.get(f"/deals/{deal.id}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "refund within 14 days of purchase" in english
    assert "¥1,234.56" in english and "minor units" not in english
    chinese = browser.get(f"/deals/{deal.id}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "购买后 14 天内可退" in chinese
    Deal.objects.filter(id=deal.id).update(refund_policy="anytime")
    assert (
        "未使用随时退" in browser.get(f"/deals/{deal.id}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    )


def test_tampered_price_on_checkout_form_is_refused(shopper, make_live_deal, fund):
    deal = make_live_deal()
    fund(shopper)
    logged_in(shopper).post(f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "1"})
    assert Order.objects.count() == 0
    assert Deal.objects.get(id=deal.id).sold == 0


def test_merchant_pages(merchant, shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1)
    fund(shopper)
    logged_in(shopper).post(f"/deals/{deal.id}/checkout", {"quantity": "1"})
    deal_tip_check(deal_id=deal.id)
    seller = logged_in(merchant)
    assert seller.get("/merchant/deals/").status_code == 200
    detail = seller.get(f"/merchant/deals/{deal.id}/").content.decode()
    assert "@alice" in detail
    assert seller.get(f"/merchant/deals/{deal.id}/progress").status_code == 200
    code = Voucher.objects.get().code
    seller.post("/merchant/redeem", {"code": code})
    assert Voucher.objects.get().state == VoucherState.REDEEMED
    again = seller.post("/merchant/redeem", {"code": code}, follow=True).content.decode()
    assert f"由 @{merchant.username} 核销" in again  # who redeemed it, in the page's language
    payouts = seller.get("/merchant/payouts").content.decode()
    assert "¥94.05" in payouts  # 9900 less the 5% fee
    seller.post("/merchant/payouts")
    assert "¥0.00" in seller.get("/merchant/payouts").content.decode()
    assert logged_in(shopper).get(f"/merchant/deals/{deal.id}/").status_code == 302


def test_merchant_deal_editor_creates_a_draft(merchant):
    seller = logged_in(merchant)
    assert seller.get("/merchant/deals/new").status_code == 200
    response = seller.post(
        "/merchant/deals/new",
        {
            "title": "洗车",
            "currency": "CNY",
            "list_price": "10000",
            "deal_price": "3000",
            "tipping_point": "1",
            "max_quantity": "50",
            "per_user_limit": "1",
            "gift_limit": "0",
            "starts_at": "2030-01-01T10:00",
            "ends_at": "2030-01-05T10:00",
            "voucher_valid_days": "30",
            "refund_policy": "anytime",
            "refund_window_days": "0",
        },
    )
    deal = Deal.objects.get()
    assert response.status_code == 302
    assert (deal.title, deal.state, deal.deal_price) == ("洗车", "draft", 3000)
    seller.post(f"/merchant/deals/{deal.id}/publish")
    assert Deal.objects.get().state == "scheduled"


def test_team_page_and_deal_card(shopper, make_live_deal, fund):
    deal = make_live_deal(team_price=5000, team_size=2)
    fund(shopper)
    logged_in(shopper).post(
        f"/deals/{deal.id}/checkout", {"quantity": "1", "team": "start", "unit_price": "5000"}
    )
    order = Order.objects.get()
    assert order.state == OrderState.AUTHORIZED
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/teams/{order.team_id}/").content.decode()
    assert "1 of 2" in page and "@alice" in page
    card = deal_card(deal.id)
    assert card is not None
    # The unit is taken, but a member of a team still waiting to fill does not count towards tipping.
    assert (card.price_display, card.units_left, card.sold, card.buyers, card.progress_percent) == (
        "¥99.00", 9, 1, 0, 0
    )  # fmt: skip
    assert "¥99.00" in deal_card_html(deal.id)
    assert Client().get(f"/deals/{deal.id}/card").status_code == 200
