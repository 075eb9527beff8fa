import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from weituan.core.errors import Conflict
from weituan.core.testing import make_user
from weituan.deals.facade import deal_card, deal_card_html
from weituan.deals.models import Deal, Order, OrderState, Voucher, VoucherState
from weituan.deals.services.deals import DealInput, deal_tip_check, deal_update
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def test_shopper_checkout_vouchers_and_qr(shopper, merchant, outsider, make_live_deal, fund):
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
    orders_page = browser.get("/me/orders/").content.decode()
    assert 'data-state="captured">已支付</span>' in orders_page and "¥99.00" in orders_page
    voucher = Voucher.objects.get()
    vouchers_page = browser.get("/me/vouchers/").content.decode()
    assert voucher.code[:4] in vouchers_page
    png = browser.get(f"/vouchers/{voucher.code}.png")
    assert (png.status_code, png["Content-Type"], png.content[:4]) == (200, "image/png", b"\x89PNG")
    svg = browser.get(f"/vouchers/{voucher.code}.svg")
    assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    # The deal's merchant may see it; someone else cannot.
    assert logged_in(merchant).get(f"/vouchers/{voucher.code}.png").content == png.content
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


def test_a_buyer_over_the_limit_is_told_how_many_they_have_and_may_still_buy(shopper, make_live_deal, fund):
    """Limit 2 a person: one bought, then two asked for. "限购 2 件" alone reads as if two were allowed."""
    deal = make_live_deal(per_user_limit=2)
    fund(shopper, 50_000)
    browser = logged_in(shopper)
    browser.post(f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "9900", "checkout_token": "a"})
    refused = browser.post(
        f"/deals/{deal.id}/checkout",
        {"quantity": "2", "unit_price": "9900", "checkout_token": "b"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    ).content.decode()
    assert "这个团购每人限购 2 件。你已买了 1 件，还可以再买 1 件。" in refused
    assert Order.objects.filter(buyer=shopper).count() == 1
    english = browser.post(
        f"/deals/{deal.id}/checkout",
        {"quantity": "2", "unit_price": "9900", "checkout_token": "c"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "You may buy 2 of this deal. You already have 1; you may buy 1 more." in english


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
    # The box is labelled; a mistyped code is refused and stays in the box to be corrected.
    redeem_page = seller.get("/merchant/redeem").content.decode()
    assert '<td class="muted">还没有核销过券。</td>' in redeem_page  # none redeemed yet, and it says so
    assert '<label for="redeem-code">券码</label>' in redeem_page
    mistyped = code[:-1] + ("A" if code[-1] != "A" else "B")
    refused = seller.post("/merchant/redeem", {"code": mistyped}).content.decode()
    assert f'name="code" value="{mistyped}"' in refused
    assert Voucher.objects.get().state == VoucherState.VALID
    redeemed = seller.post("/merchant/redeem", {"code": code}).content.decode()
    assert 'name="code" value=""' in redeemed  # emptied for the next customer's
    assert Voucher.objects.get().state == VoucherState.REDEEMED
    again = seller.post("/merchant/redeem", {"code": code}, follow=True).content.decode()
    assert f"由 @{merchant.username} 核销" in again  # who redeemed it, in the page's language
    payouts = seller.get("/merchant/payouts").content.decode()
    assert "¥94.05" in payouts  # 9900 less the 5% fee
    seller.post("/merchant/payouts")
    assert "¥0.00" in seller.get("/merchant/payouts").content.decode()
    assert logged_in(shopper).get(f"/merchant/deals/{deal.id}/").status_code == 302


DRAFT_FORM = {
    "title": "洗车",
    "currency": "CNY",
    "list_price": "100",  # yuan, as a merchant writes a price
    "deal_price": "30",
    "tipping_point": "1",
    "max_quantity": "50",
    "per_user_limit": "1",
    "gift_limit": "0",
    "starts_at": "2030-01-01T10:00",
    "ends_at": "2030-01-05T10:00",
    "voucher_valid_days": "30",
    "refund_policy": "anytime",
    "refund_window_days": "0",
}


def test_merchant_deal_editor_creates_a_draft(merchant):
    seller = logged_in(merchant)
    assert seller.get("/merchant/deals/new").status_code == 200
    response = seller.post("/merchant/deals/new", DRAFT_FORM)
    deal = Deal.objects.get()
    assert response.status_code == 302
    assert (deal.title, deal.state, deal.list_price, deal.deal_price) == ("洗车", "draft", 10000, 3000)
    # Prices are written in yuan, with fen after the point, and shown so again for editing; the box
    # says so, and offers a keypad with the point.
    editor = seller.get("/merchant/deals/new", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "单位为元，如 39.90" in editor and "以分为单位" not in editor
    assert re.search(
        r'<input type="number" name="deal_price"[^>]*inputmode="decimal"[^>]*step="0.01"', editor
    )
    seller.post(
        f"/merchant/deals/{deal.id}/edit",
        {**DRAFT_FORM, "deal_price": "29.9", "team_price": "19.90", "team_size": "2"},
    )
    deal.refresh_from_db()
    assert (deal.deal_price, deal.team_price) == (2990, 1990)
    again = seller.get(f"/merchant/deals/{deal.id}/edit").content.decode()
    assert 'name="deal_price" value="29.90"' in again and 'name="list_price" value="100.00"' in again
    # Before publishing, the draft's page shows what it will sell at (a draft has no card yet).
    draft = seller.get(f"/merchant/deals/{deal.id}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "<h2>预览</h2>" in draft
    assert '<td colspan="5" class="muted">还没有订单。</td>' in draft  # its orders table, empty, says so
    assert '<dt>团购价</dt><dd class="price">¥29.90</dd>' in draft and "<dd>¥100.00</dd>" in draft
    assert "<dd>¥19.90 · 成团人数 2</dd>" in draft
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


def test_merchant_edits_a_draft_into_a_flash_sale(merchant):
    seller = logged_in(merchant)
    seller.post("/merchant/deals/new", DRAFT_FORM)
    deal = Deal.objects.get()
    page = seller.get(f"/merchant/deals/{deal.id}/edit", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'value="洗车"' in page and "编辑草稿" in page and "秒杀批次" in page
    edited = {
        **DRAFT_FORM,
        "title": "精洗",
        "deal_price": "25",
        "team_window_hours": "12",
        "flash_batches": "2030-01-02 20:00, 30\n\n2030-01-01 20:00，20\n",
    }
    response = seller.post(f"/merchant/deals/{deal.id}/edit", edited)
    assert response.status_code == 302
    deal.refresh_from_db()
    assert (deal.title, deal.deal_price, deal.team_window_hours, deal.state) == ("精洗", 2500, 12, "draft")
    # A flash sale sells one unit a buyer, no gifts; the batches come in time order.
    assert (deal.flash_sale, deal.per_user_limit, deal.gift_limit) == (True, 1, 0)
    batches = [
        (timezone.localtime(b.release_at).strftime("%m-%d %H:%M"), b.quantity) for b in deal.batches.all()
    ]
    assert batches == [("01-01 20:00", 20), ("01-02 20:00", 30)]
    detail = seller.get(f"/merchant/deals/{deal.id}/").content.decode()
    assert "2030-01-01 20:00" in detail and "2030-01-02 20:00" in detail
    # The editor shows the batches as they were entered; saving them again changes nothing.
    again = seller.get(f"/merchant/deals/{deal.id}/edit").content.decode()
    assert "2030-01-01 20:00, 20\n2030-01-02 20:00, 30" in again
    # Taking the batches out makes it an ordinary deal again.
    seller.post(f"/merchant/deals/{deal.id}/edit", {**DRAFT_FORM, "per_user_limit": "3"})
    deal.refresh_from_db()
    assert (deal.flash_sale, deal.per_user_limit, deal.batches.count()) == (False, 3, 0)


def test_draft_edits_that_are_refused_change_nothing(merchant):
    seller = logged_in(merchant)
    seller.post("/merchant/deals/new", DRAFT_FORM)
    deal = Deal.objects.get()
    bad_line = seller.post(
        f"/merchant/deals/{deal.id}/edit",
        {**DRAFT_FORM, "title": "改", "flash_batches": "tomorrow, 50"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert bad_line.status_code == 200 and "第 1 行" in bad_line.content.decode()
    short = seller.post(
        f"/merchant/deals/{deal.id}/edit",
        {**DRAFT_FORM, "title": "改", "flash_batches": "2030-01-01 20:00, 10"},
    )
    assert short.status_code == 200 and "各批秒杀加起来要等于最多售出件数。" in short.content.decode()
    deal.refresh_from_db()
    assert (deal.title, deal.flash_sale) == ("洗车", False)


def test_a_published_deal_is_not_edited(merchant, make_live_deal):
    deal = make_live_deal()
    seller = logged_in(merchant)
    page = seller.get(f"/merchant/deals/{deal.id}/edit", follow=True).content.decode()
    assert "只能编辑草稿" in page
    response = seller.post(f"/merchant/deals/{deal.id}/edit", {**DRAFT_FORM, "deal_price": "1"})
    assert response.status_code == 302
    assert Deal.objects.get(id=deal.id).deal_price == 9900
    with pytest.raises(Conflict) as refused:
        deal_update(
            deal_id=deal.id,
            by=merchant,
            data=DealInput(
                title="改",
                list_price=20000,
                deal_price=1,
                max_quantity=10,
                starts_at=deal.starts_at,
                ends_at=deal.ends_at,
            ),
        )
    assert refused.value.code == "deal_not_draft"


def test_another_merchants_draft_is_not_found(merchant):
    seller = logged_in(merchant)
    seller.post("/merchant/deals/new", DRAFT_FORM)
    deal = Deal.objects.get()
    rival = logged_in(make_user("rival_shop", merchant=True))
    assert rival.get(f"/merchant/deals/{deal.id}/edit").status_code == 404
    assert rival.post(f"/merchant/deals/{deal.id}/edit", {**DRAFT_FORM, "title": "抢"}).status_code == 404
    assert Deal.objects.get().title == "洗车"


def test_merchant_progress_gives_the_deal_figures(merchant, shopper, outsider, make_live_deal, fund):
    deal = make_live_deal(tipping_point=5, max_quantity=10)
    for buyer, quantity in ((shopper, 2), (outsider, 1)):
        fund(buyer, 50_000)
        order_place(deal_id=deal.id, buyer=buyer, quantity=quantity, expected_unit_price=9900)
    progress = logged_in(merchant).get(f"/merchant/deals/{deal.id}/progress", HTTP_ACCEPT_LANGUAGE="en")
    progress = progress.content.decode()
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", progress))
    assert figures["Held"] == "3" and figures["Paid"] == "0" and figures["Redeemed"] == "0"
    assert figures["Sold"].startswith("3 / 10")


def test_my_orders_offers_cancel_only_where_a_cancel_can_succeed(shopper, provider, make_live_deal, fund):
    from unittest import mock

    from weituan.deals.services import orders as order_services

    fake, _ = provider
    fund(shopper, 100_000)
    others = iter(make_user(f"other{i}") for i in range(8))

    def tipped(**terms):
        """A deal that has tipped on another buyer's paid order."""
        deal = make_live_deal(tipping_point=1, **terms)
        someone = next(others)
        fund(someone)
        order_place(deal_id=deal.id, buyer=someone, quantity=1)
        assert deal_tip_check(deal_id=deal.id) is True
        return deal

    team_terms = {"team_price": 5_000, "team_size": 3}
    orders = {
        # A hold on a deal that has not tipped.
        "held": order_place(deal_id=make_live_deal(title="未成团").id, buyer=shopper, quantity=1),
        # A member of a team still open on a tipped deal: not counted, nothing owed yet.
        "open_team": order_place(deal_id=tipped(**team_terms).id, buyer=shopper, quantity=1, team="start"),
    }
    # The leader of a team that filled after the tip: owed its capture (the check has not run yet).
    filled = tipped(team_price=5_000, team_size=2)
    orders["filled_team"] = order_place(deal_id=filled.id, buyer=shopper, quantity=1, team="start")
    mate = next(others)
    fund(mate)
    order_place(deal_id=filled.id, buyer=mate, quantity=1, team=orders["filled_team"].team_id)
    # A card hold the deal tipped on whose capture the provider did not do.
    unpaid = make_live_deal(title="刷卡", tipping_point=1)
    orders["capture_failed"] = order_place(deal_id=unpaid.id, buyer=shopper, quantity=1, gateway="card")
    fake.outage = 500
    assert deal_tip_check(deal_id=unpaid.id) is True
    # A card reservation whose payment has not completed.
    with mock.patch.object(order_services, "order_authorize_remote", lambda *, order_id: False):
        reserved = make_live_deal(title="待支付")
        orders["reservation"] = order_place(deal_id=reserved.id, buyer=shopper, quantity=1, gateway="card")
    # A paid order, and a card hold being released (its provider down).
    orders["paid"] = order_place(deal_id=tipped().id, buyer=shopper, quantity=1)
    voiding = make_live_deal(title="撤销中", tipping_point=2)
    fake.outage = None
    orders["voiding"] = order_place(deal_id=voiding.id, buyer=shopper, quantity=1, gateway="card")
    fake.outage = 500
    order_cancel(order_id=orders["voiding"].id, by=shopper)
    states = {name: Order.objects.get(id=order.id).state for name, order in orders.items()}
    assert states == {
        "held": "authorized", "open_team": "authorized", "filled_team": "authorized",
        "capture_failed": "authorized", "reservation": "pending", "paid": "captured", "voiding": "voiding",
    }  # fmt: skip

    browser = logged_in(shopper)
    page = browser.get("/me/orders/").content.decode()

    def action(name, what):
        return f'action="{reverse("deals:order_action", args=[orders[name].id, what])}"'

    offered = {name for name in orders if action(name, "cancel") in page}
    assert offered == {"held", "open_team", "reservation"}
    assert action("paid", "refund") in page
    # Each cancel offered goes through; the others are refused and change nothing.
    for name in ("held", "open_team", "reservation", "filled_team", "capture_failed"):
        shown = browser.post(reverse("deals:order_action", args=[orders[name].id, "cancel"]), follow=True)
        state = Order.objects.get(id=orders[name].id).state
        if name in offered:
            assert state in ("voided", "expired"), name
        else:
            assert state == "authorized", name
            assert "这个订单已不能取消" in shown.content.decode(), name
    assert not [path for path, _ in fake.calls if path.endswith("/void")]  # no hold released at the provider


def _menu_links(page: str) -> list[str]:
    menu = page.split('<div class="menu-body">', 1)[1].split("</div>", 1)[0]
    return re.findall(r'<a href="([^"]+)"', menu)


def test_the_menu_leads_a_merchant_to_their_deals_and_every_buyer_to_their_vouchers(shopper, merchant):
    """A merchant with no deal yet finds where to make one (and to redeem vouchers) from any page, not only
    from a deal of their own; a shopper finds their vouchers there too."""
    shop_menu = _menu_links(logged_in(merchant).get("/trending").content.decode())
    assert "/merchant/deals/" in shop_menu
    assert "/merchant/redeem" in shop_menu
    assert "/me/vouchers/" in shop_menu
    buyer_menu = _menu_links(logged_in(shopper).get("/trending").content.decode())
    assert "/me/vouchers/" in buyer_menu
    assert [link for link in buyer_menu if link.startswith("/merchant/")] == []
