"""The deal pages speak the reader's language: states as words, amounts as money, refusals as sentences."""

from typing import Any

import pytest
from django.test import Client

from weituan.core.testing import make_user
from weituan.deals.models import Deal, Order, Posting, Voucher
from weituan.deals.queries import wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def _browser(user: Any, language: str = "zh-hans") -> Client:
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    browser.force_login(user)
    return browser


def _buy(browser: Client, deal: Any, **form: str) -> str:
    """The deal page as the browser sees it after posting the checkout form (with its message)."""
    fields = {"quantity": "1", "unit_price": str(deal.deal_price), **form}
    return browser.post(f"/deals/{deal.id}/checkout", fields, follow=True).content.decode()


def test_orders_vouchers_and_deals_show_states_in_words_and_amounts_as_money(
    shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(tipping_point=1, max_quantity=1, per_user_limit=1)
    fund(shopper, 50_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    assert Deal.objects.get(id=deal.id).state == "sold_out"

    orders = _browser(shopper).get("/me/orders/").content.decode()
    assert 'data-state="captured">已支付</span>' in orders
    assert "¥99.00" in orders and "9900" not in orders
    english = _browser(shopper, "en").get("/me/orders/").content.decode()
    assert 'data-state="captured">Paid</span>' in english

    vouchers = _browser(shopper).get("/me/vouchers/").content.decode()
    assert "· 可使用" in vouchers and "· valid" not in vouchers
    # Its QR code is named and offered for saving in words, not as "QR" and a bare "PNG".
    assert 'alt="券的二维码"' in vouchers and ">保存二维码</a>" in vouchers
    assert 'alt="QR"' not in vouchers and ">PNG<" not in vouchers

    seller = _browser(merchant)
    detail = seller.get(f"/merchant/deals/{deal.id}/").content.decode()
    assert "<p>已售罄</p>" in detail  # the deal's state
    assert "<td>¥99.00</td><td>已支付</td>" in detail  # its order
    assert "sold_out" not in detail and "captured" not in detail
    assert "<td>已售罄</td>" in seller.get("/merchant/deals/").content.decode()
    # The card of a deal no longer on sale says why, in the reader's language.
    assert "已售罄" in _browser(shopper).get(f"/deals/{deal.id}/card").content.decode()
    assert "Sold out" in _browser(shopper, "en").get(f"/deals/{deal.id}/card").content.decode()


def test_the_team_page_names_the_teams_state(shopper: Any, make_live_deal: Any, fund: Any) -> None:
    deal = make_live_deal(team_price=5000, team_size=2)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start")
    page = _browser(shopper).get(f"/teams/{order.team_id}/").content.decode()
    assert "<strong>拼团中</strong>" in page
    assert "<strong>Open</strong>" in _browser(shopper, "en").get(f"/teams/{order.team_id}/").content.decode()


def test_checkout_refusals_are_sentences_in_the_pages_language_and_move_nothing(
    shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(per_user_limit=1, gift_limit=1, max_quantity=5)
    browser = _browser(shopper)

    # An empty wallet: how much it has and how much the order needs, as money.
    assert "钱包余额 ¥0.00，这个订单需要 ¥99.00。" in _buy(browser, deal)
    assert "Your wallet has ¥0.00 and this order needs ¥99.00." in _buy(_browser(shopper, "en"), deal)
    fund(shopper, 50_000)
    # A price changed in the form: the price as it is.
    assert "现在的价格是 ¥99.00。请确认后重新购买。" in _buy(browser, deal, unit_price="1")
    # Past the per-person limit, and how many more may be gifts.
    assert "这个团购每人限购 1 件。 另外可多买 1 件送人。" in _buy(
        browser, deal, quantity="3", gift_quantity="1"
    )
    assert "Quantity and price must be whole numbers" in _buy(_browser(shopper, "en"), deal, quantity="x")
    for quantity, gifts in (("0", "0"), ("1", "2"), ("1", "-1")):
        refused = _buy(browser, deal, quantity=quantity, gift_quantity=gifts)
        assert "至少买一件；送人的件数包含在购买件数里。" in refused, (quantity, gifts)
    assert (Order.objects.count(), Deal.objects.get(id=deal.id).sold) == (0, 0)
    assert (wallet_of(user=shopper).available, wallet_of(user=shopper).held) == (50_000, 0)

    # A good order says where its money stands.
    placed = _buy(_browser(shopper, "en"), deal)
    assert f"Order {Order.objects.get().id} is placed: ¥99.00 is held and paid once the deal is on." in placed
    other = make_user("late_buyer")
    fund(other)
    Deal.objects.filter(id=deal.id).update(sold=5)
    postings = Posting.objects.count()
    assert "这个团购已售罄。" in _buy(_browser(other), deal)
    assert (Order.objects.count(), Posting.objects.count()) == (1, postings)


def test_the_api_refusal_of_an_empty_wallet_names_its_currency(
    shopper: Any, make_live_deal: Any, api_as: Any
) -> None:
    deal = make_live_deal()
    refused = api_as(shopper).post(
        f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, content_type="application/json"
    )
    assert refused.status_code == 402
    body = refused.json()
    assert (body["code"], body["balance"], body["needed"], body["currency"]) == (
        "insufficient_balance",
        0,
        9900,
        "CNY",
    )


def test_merchant_refusals_are_in_the_pages_language(
    merchant: Any, shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(tipping_point=1)
    fund(shopper)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    code = Voucher.objects.get().code
    rival = make_user("rival_shop", merchant=True)

    unknown = _browser(merchant).post("/merchant/redeem", {"code": "NOPE-NOPE"}).content.decode()
    assert "没有这个券码。请检查后重试。" in unknown
    theirs = _browser(rival).post("/merchant/redeem", {"code": code}).content.decode()
    assert "这是其他商家的团购。" in theirs
    assert Voucher.objects.get().state == "valid"
    again = _browser(merchant, "en").post(f"/merchant/deals/{deal.id}/publish", follow=True).content.decode()
    assert "This deal is already published." in again


def test_a_merge_says_where_the_team_went(
    shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(team_price=5000, team_size=3)
    fund(shopper)
    fund(outsider)
    mine = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start")
    theirs = order_place(deal_id=deal.id, buyer=outsider, quantity=1, team="start")
    page = (
        _browser(shopper, "en")
        .post(f"/teams/{mine.team_id}/merge", {"into": str(theirs.team_id)}, follow=True)
        .content.decode()
    )
    assert f"Your team has joined @{outsider.username}&#x27;s team." in page
    # Merging it again: it is merged already, and nothing moves.
    again = _browser(shopper).post(f"/teams/{mine.team_id}/merge", {"into": str(theirs.team_id)}, follow=True)
    assert "两个团都必须还在拼团中。" in again.content.decode()


def test_my_orders_offers_refund_only_where_the_deals_policy_lets_it_succeed(
    shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from weituan.deals.services.vouchers import voucher_redeem

    fund(shopper, 100_000)

    def paid(**terms: Any) -> Any:
        deal = make_live_deal(tipping_point=1, **terms)
        order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
        deal_tip_check(deal_id=deal.id)
        return order

    orders = {
        "window": paid(title="七天可退"),
        "anytime": paid(title="随时退", refund_policy="anytime"),
        "on_expiry": paid(title="过期退", refund_policy="on_expiry"),
        "window_closed": paid(title="三天可退", refund_window_days=3),
        "used": paid(title="已使用", refund_policy="anytime"),
    }
    Order.objects.filter(id=orders["window_closed"].id).update(captured_at=timezone.now() - timedelta(days=4))
    voucher_redeem(code=Voucher.objects.get(order=orders["used"]).code, by=merchant)

    browser = _browser(shopper)
    page = browser.get("/me/orders/").content.decode()
    offered = {name for name, order in orders.items() if f'action="/me/orders/{order.id}/refund"' in page}
    assert offered == {"window", "anytime"}
    # Each one not offered is refused if asked for anyway, and stays paid.
    for name in ("on_expiry", "window_closed", "used"):
        browser.post(f"/me/orders/{orders[name].id}/refund")
        assert Order.objects.get(id=orders[name].id).state == "captured", name
    for name in ("window", "anytime"):
        browser.post(f"/me/orders/{orders[name].id}/refund")
        assert Order.objects.get(id=orders[name].id).state == "refunded", name
    assert (
        f'action="/me/orders/{orders["window"].id}/refund"' not in browser.get("/me/orders/").content.decode()
    )


def test_a_shopper_tops_up_the_wallet_in_demo_mode_and_goes_back_to_the_deal(
    shopper: Any, make_live_deal: Any, settings: Any
) -> None:
    deal = make_live_deal()
    browser = _browser(shopper, "en")
    page = browser.get(f"/deals/{deal.id}/").content.decode()
    assert f'href="/me/wallet/?next=/deals/{deal.id}/#top-up">Top up</a>' in page
    wallet_page = browser.get(f"/me/wallet/?next=/deals/{deal.id}/").content.decode()
    assert f'name="next" value="/deals/{deal.id}/"' in wallet_page

    form = {"amount": "100", "top_up_token": "form-1", "next": f"/deals/{deal.id}/"}
    response = browser.post("/me/wallet/", form)
    assert response["Location"] == f"/deals/{deal.id}/"
    assert "¥100.00 added to your wallet." in browser.get(response["Location"]).content.decode()
    browser.post("/me/wallet/", form)  # the same form sent twice adds once
    assert wallet_of(user=shopper).available == 10_000

    # Refused amounts change nothing, and say why; a foreign "next" is not followed.
    for amount, said in (
        ("abc", "Enter a whole number of yuan."),
        ("0", "Enter an amount from ¥1 to ¥100,000."),
    ):
        refused = browser.post("/me/wallet/", {"amount": amount, "next": "//evil.example/"}, follow=True)
        assert refused.redirect_chain[-1][0] == "/me/wallet/"
        assert said in refused.content.decode()
    assert wallet_of(user=shopper).available == 10_000
    # Now the order the empty wallet refused goes through.
    _buy(browser, deal)
    assert Order.objects.get(buyer=shopper).state == "authorized"

    # Outside dev and demo mode there is no play money: no form, and a top-up sent anyway is refused.
    settings.PROFILE = "production"
    assert 'id="top-up"' not in browser.get("/me/wallet/").content.decode()
    assert "Top up" not in browser.get(f"/deals/{deal.id}/").content.decode()
    disabled = browser.post("/me/wallet/", {"amount": "100"}, follow=True).content.decode()
    assert "Top-ups are only available in dev and demo mode." in disabled
    assert wallet_of(user=shopper).available == 10_000 - 9_900


def test_merchant_progress_counts_units_refunded_out_of_a_paid_order(
    merchant: Any, shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    import re

    from weituan.deals.services.refunds import order_refund
    from weituan.deals.services.vouchers import voucher_redeem

    deal = make_live_deal(tipping_point=1, per_user_limit=3, refund_policy="anytime")
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=3)
    deal_tip_check(deal_id=deal.id)
    first, *_ = Voucher.objects.filter(order=order).order_by("id")
    voucher_redeem(code=first.code, by=merchant)
    order_refund(order_id=order.id, by=shopper)  # the two unused of the three

    page = _browser(merchant, "en").get(f"/merchant/deals/{deal.id}/progress").content.decode()
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", page))
    assert (figures["Paid"], figures["Refunded"], figures["Redeemed"], figures["Held"]) == (
        "1",
        "2",
        "1",
        "0",
    )


def test_the_deal_editor_puts_each_problem_beside_its_field_in_the_pages_language(merchant: Any) -> None:
    import re

    form = {
        "title": "坏团购",
        "currency": "CNY",
        "list_price": "50",
        "deal_price": "60",
        "team_price": "70",
        "team_size": "3",
        "tipping_point": "20",
        "max_quantity": "10",
        "per_user_limit": "1",
        "gift_limit": "0",
        "starts_at": "2030-01-05T10:00",
        "ends_at": "2030-01-01T10:00",
        "voucher_valid_days": "30",
        "refund_policy": "on_expiry",
        "refund_window_days": "0",
        "flash_batches": "2030-01-05 10:00, 3",
    }
    page = _browser(merchant).post("/merchant/deals/new", form).content.decode()
    assert Deal.objects.count() == 0
    # Each field's errors come just before its box, named by it (aria-describedby).
    errors = dict(
        re.findall(
            r'<ul class="errorlist" id="id_(\w+)_error"><li>([^<]+)</li></ul>\s*<(?:input|textarea)[^>]*name="\1"',
            page,
        )
    )
    assert errors == {
        "deal_price": "团购价必须大于 0 且不高于原价。",
        "tipping_point": "成团人数下限必须在 1 到最多售出件数之间。",
        "ends_at": "结束时间必须晚于开始时间。",
        "team_price": "拼团价必须低于团购价。",
        "flash_batches": "各批秒杀加起来要等于最多售出件数。",
    }
    assert "deal_price must be" not in page
    # The refund policies are offered in words too.
    editor = _browser(merchant).get("/merchant/deals/new").content.decode()
    assert '<option value="on_expiry">券过期未使用自动退款</option>' in editor


def test_my_orders_shows_what_a_partial_refund_returned(
    shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    from weituan.deals.services.refunds import order_refund
    from weituan.deals.services.vouchers import voucher_redeem

    deal = make_live_deal(tipping_point=1, per_user_limit=3, refund_policy="anytime")
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=3)
    deal_tip_check(deal_id=deal.id)
    voucher_redeem(code=Voucher.objects.filter(order=order).order_by("id")[0].code, by=merchant)
    order_refund(order_id=order.id, by=shopper)

    page = _browser(shopper, "en").get("/me/orders/").content.decode()
    assert '<td>¥297.00</td><td><span class="order-state" data-state="captured">Paid</span>' in page
    assert '<span class="refunded-part">¥198.00 refunded</span>' in page
    assert (
        '<span class="refunded-part">已退款 ¥198.00</span>'
        in _browser(shopper).get("/me/orders/").content.decode()
    )


def test_a_flash_sale_says_when_its_first_batch_and_then_its_next_goes_on_sale(
    shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from weituan.deals.models import FlashBatch

    soon = timezone.localtime(timezone.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    later = soon + timedelta(hours=2)
    deal = make_live_deal(max_quantity=5, flash_batches=((soon, 2), (later, 3)))
    fund(shopper)
    # Before the first batch nothing has been on sale, so nothing is sold out: the sale has not started.
    card = _browser(shopper, "en").get(f"/deals/{deal.id}/card").content.decode()
    assert f'<span class="next-batch">first batch of 2 on sale {soon:%m-%d %H:%M}</span>' in card
    assert f'<span class="next-batch">首批 2 件 {soon:%m-%d %H:%M} 开抢</span>' in (
        _browser(shopper).get(f"/deals/{deal.id}/card").content.decode()
    )
    refused = _buy(_browser(shopper), deal)
    assert f"秒杀还没开始。首批 2 件 {soon:%m-%d %H:%M} 开抢。" in refused
    assert "抢完" not in refused
    english = _buy(_browser(shopper, "en"), deal)
    assert f"This sale has not started. Its first batch of 2 goes on sale at {soon:%m-%d %H:%M}." in english
    assert "sold out" not in english
    assert Order.objects.count() == 0

    # Once a batch is on sale the card counts its units again; the last batch sold out is sold out.
    FlashBatch.objects.filter(deal=deal, release_at=soon).update(released_at=timezone.now())
    Deal.objects.filter(id=deal.id).update(released=2)
    assert "2 units left" in _browser(shopper, "en").get(f"/deals/{deal.id}/card").content.decode()
    # The first batch sold out, the next is to come.
    Deal.objects.filter(id=deal.id).update(sold=2)
    card = _browser(shopper, "en").get(f"/deals/{deal.id}/card").content.decode()
    assert f'<span class="next-batch">next batch of 3 on sale {later:%m-%d %H:%M}</span>' in card
    assert f"这一批已抢完。下一批 3 件 {later:%m-%d %H:%M} 开抢。" in _buy(_browser(shopper), deal)
    assert Order.objects.count() == 0
    FlashBatch.objects.filter(deal=deal).update(released_at=timezone.now())
    Deal.objects.filter(id=deal.id).update(released=5, sold=5)
    card = _browser(shopper, "en").get(f"/deals/{deal.id}/card").content.decode()
    assert "next batch" not in card and "0 units left" in card


def test_a_deal_not_on_sale_yet_says_from_when_and_a_merged_team_links_where_it_went(
    shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    starts = timezone.localtime(timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    later = make_live_deal(starts_at=starts, ends_at=starts + timedelta(days=2))
    assert later.state == "scheduled"
    card = _browser(shopper).get(f"/deals/{later.id}/card").content.decode()
    assert f'<span class="starts-at">{starts:%m-%d %H:%M} 开售</span>' in card

    deal = make_live_deal(team_price=5000, team_size=3)
    fund(shopper)
    fund(outsider)
    mine = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start")
    theirs = order_place(deal_id=deal.id, buyer=outsider, quantity=1, team="start")
    _browser(shopper).post(f"/teams/{mine.team_id}/merge", {"into": str(theirs.team_id)})
    page = _browser(shopper, "en").get(f"/teams/{mine.team_id}/").content.decode()
    assert (
        f'Merged into another team</strong> · <a href="/teams/{theirs.team_id}/">to the team it joined</a>'
        in page
    )


def _form_fields(page: str, marker: str) -> dict[str, str]:
    """The hidden fields of the form on `page` whose fields include `marker`."""
    import re

    for form in re.findall(r"<form method=\"post\" action=\"/deals/\d+/checkout\">(.*?)</form>", page, re.S):
        if marker in form:
            return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    raise AssertionError(f"no form with {marker}")


def test_a_team_started_or_joined_from_the_page_twice_is_bought_once(
    shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(team_price=5000, team_size=3, per_user_limit=2)
    fund(shopper)
    fund(outsider)
    browser = _browser(shopper)
    start = _form_fields(browser.get(f"/deals/{deal.id}/").content.decode(), 'value="start"')
    for _ in range(2):  # a double click
        browser.post(f"/deals/{deal.id}/checkout", start)
    (order,) = Order.objects.filter(buyer=shopper)
    assert wallet_of(user=shopper).held == 5000

    friend = _browser(outsider)
    join = _form_fields(friend.get(f"/teams/{order.team_id}/").content.decode(), f'value="{order.team_id}"')
    for _ in range(2):
        friend.post(f"/deals/{deal.id}/checkout", join)
    assert Order.objects.filter(buyer=outsider).count() == 1
    assert wallet_of(user=outsider).held == 5000
    # Each form of a page has its own key: buying alone after starting a team is another order.
    buy = _form_fields(browser.get(f"/deals/{deal.id}/").content.decode(), 'name="checkout_token" value="')
    assert buy["checkout_token"].endswith("-buy")
    browser.post(f"/deals/{deal.id}/checkout", {**buy, "quantity": "1"})
    assert Order.objects.filter(buyer=shopper).count() == 2


def test_a_sale_in_another_year_is_shown_with_its_year(
    shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from weituan.deals.services.deals import DealInput, deal_create, deal_publish

    this_year = timezone.localtime().year
    starts = timezone.localtime(timezone.now()).replace(
        year=this_year + 1, month=1, day=1, hour=10, minute=0, second=0, microsecond=0
    )
    later = deal_publish(
        deal_id=deal_create(
            merchant=merchant,
            data=DealInput(
                title="新年团",
                list_price=2000,
                deal_price=1000,
                max_quantity=4,
                starts_at=starts,
                ends_at=starts + timedelta(days=2),
                flash_batches=((starts, 2), (starts + timedelta(days=1), 2)),
            ),
        ).id,
        by=merchant,
    )
    card = _browser(shopper).get(f"/deals/{later.id}/card").content.decode()
    assert f'<span class="starts-at">{this_year + 1}-01-01 10:00 开售</span>' in card
    assert f"首批 2 件 {this_year + 1}-01-01 10:00 开抢" in card

    # This year's moments keep the short form.
    soon = timezone.localtime(timezone.now() + timedelta(hours=2)).replace(second=0, microsecond=0)
    if soon.year == this_year:
        nearer = make_live_deal(starts_at=soon, ends_at=soon + timedelta(days=1))
        card = _browser(shopper).get(f"/deals/{nearer.id}/card").content.decode()
        assert f'<span class="starts-at">{soon:%m-%d %H:%M} 开售</span>' in card


def test_the_limit_with_gifts_reads_as_one_sentence_in_each_language(
    shopper: Any, make_live_deal: Any
) -> None:
    deal = make_live_deal(per_user_limit=2, gift_limit=3)
    assert "每人限购 2 件，还可多买 3 件送人" in _browser(shopper).get(f"/deals/{deal.id}/").content.decode()
    english = _browser(shopper, "en").get(f"/deals/{deal.id}/").content.decode()
    assert "Limit 2 per person, may buy 3 more as gifts" in english
    alone = _browser(shopper).get(f"/deals/{make_live_deal(per_user_limit=1).id}/").content.decode()
    assert "每人限购 1 件" in alone and "送人" not in alone


def test_a_deal_in_dollars_is_topped_up_bought_and_paid_out_in_dollars_through_the_pages(
    shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    fund(shopper)  # yuan, which a deal in dollars cannot take
    deal = make_live_deal(currency="USD", tipping_point=1)
    browser = _browser(shopper, "en")
    page = browser.get(f"/deals/{deal.id}/").content.decode()
    assert "Wallet: $0.00" in page
    assert f'href="/me/wallet/?next=/deals/{deal.id}/&amp;currency=USD#top-up">Top up</a>' in page
    wallet_page = browser.get(f"/me/wallet/?next=/deals/{deal.id}/&currency=USD").content.decode()
    assert "Available: <strong>$0.00</strong>" in wallet_page
    assert "Amount (USD)" in wallet_page
    # A refused amount says so in dollars, not in yuan, and changes nothing.
    for amount, said in (
        ("abc", "Enter a whole amount in USD."),
        ("0", "Enter an amount from $1 to $100,000."),
    ):
        refused = browser.post("/me/wallet/", {"amount": amount, "currency": "USD"}, follow=True)
        assert refused.redirect_chain[-1][0] == "/me/wallet/?currency=USD"
        assert said in refused.content.decode()
    assert wallet_of(user=shopper, currency="USD").available == 0
    form = {"amount": "100", "currency": "USD", "top_up_token": "usd-1", "next": f"/deals/{deal.id}/"}
    response = browser.post("/me/wallet/", form)
    assert response["Location"] == f"/deals/{deal.id}/"
    assert "$100.00 added to your wallet." in browser.get(response["Location"]).content.decode()
    assert (wallet_of(user=shopper, currency="USD").available, wallet_of(user=shopper).available) == (
        10_000,
        100_000,
    )
    _buy(browser, deal)
    deal_tip_check(deal_id=deal.id)
    assert Order.objects.get(buyer=shopper, deal=deal).state == "captured"
    # The yuan wallet links to the dollars one, and the other way round.
    assert '<a href="?currency=USD">USD</a>' in browser.get("/me/wallet/").content.decode()
    assert '<a href="?currency=CNY">CNY</a>' in browser.get("/me/wallet/?currency=USD").content.decode()

    # The merchant is paid out in dollars once the voucher is used: 99.00 less the 5% fee.
    seller = _browser(merchant, "en")
    code = Voucher.objects.get(order__buyer=shopper, deal=deal).code
    assert "✔" in seller.post("/merchant/redeem", {"code": code}, follow=True).content.decode()
    payouts = seller.get("/merchant/payouts?currency=USD").content.decode()
    assert "Payable now: <strong>$94.05</strong>" in payouts
    assert '<a href="?currency=USD">USD</a>' in seller.get("/merchant/payouts").content.decode()
    paid = seller.post("/merchant/payouts", {"currency": "USD"}, follow=True)
    assert paid.redirect_chain[-1][0] == "/merchant/payouts?currency=USD"
    assert "Paid out $94.05" in paid.content.decode()
    assert Posting.objects.filter(kind="payout").count() == 1
