"""Every deals list can be read to its end: my orders, my vouchers, the merchant's redemptions, a deal's
orders and the deals on sale come a page at a time, with links to the older (and newer) pages that keep
the page's other query parameters. Walking the pages shows each item exactly once, in the list's order,
whichever way they are walked; a link to a page with nothing left on it leads back to the list's start."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

import weituan.deals.views as views
import weituan.deals.views_merchant as views_merchant
from weituan.core.testing import make_user
from weituan.deals.models import Deal, Order, Voucher
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.vouchers import voucher_code_display, voucher_redeem

pytestmark = pytest.mark.django_db

# A query parameter that is not the list's cursor (as a shared link's campaign tag): every link keeps it.
KEPT = "utm_source=weibo"


def _browser(user: Any, language: str = "en") -> Client:
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    browser.force_login(user)
    return browser


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return found[1].replace("&amp;", "&") if found else None


def _walk(browser: Client, url: str, items: Any) -> tuple[list[list[Any]], str]:
    """The items of each page from `url` on, following the older links to the end, and the last page's
    address. Every link keeps the other query parameter."""
    pages = []
    while True:
        response = browser.get(url)
        assert response.status_code == 200, (url, response.status_code)
        page = response.content.decode()
        pages.append(items(page))
        older = _link(page, "next")
        if older is None:
            return pages, url
        assert KEPT in older and "max_id=" in older
        url = older


def _walk_back(browser: Client, url: str, items: Any) -> list[list[Any]]:
    """The items of each page from `url` back to the list's start, following the newer links."""
    pages = []
    while True:
        page = browser.get(url).content.decode()
        pages.append(items(page))
        newer = _link(page, "prev")
        if newer is None:
            return pages
        assert KEPT in newer and "min_id=" in newer
        url = newer


def _check_walks(browser: Client, path: str, items: Any, expected: list[Any], size: int) -> None:
    pages, last = _walk(browser, f"{path}?{KEPT}", items)
    assert [item for page in pages for item in page] == expected  # each once, in order
    assert [len(page) for page in pages] == [
        min(size, len(expected) - start) for start in range(0, len(expected), size)
    ]
    first = browser.get(f"{path}?{KEPT}").content.decode()
    assert _link(first, "prev") is None  # nothing is newer than the first page
    back = _walk_back(browser, last, items)
    assert [item for page in reversed(back) for item in page] == expected
    assert back[-1] == pages[0]


def test_my_orders_are_all_read_a_page_at_a_time(shopper, outsider, make_live_deal, fund, monkeypatch):
    monkeypatch.setattr(views, "MY_ORDERS_PER_PAGE", 3)
    fund(shopper)
    fund(outsider)
    deal = make_live_deal(deal_price=100, max_quantity=50, per_user_limit=50, tipping_point=40)
    mine = [order_place(deal_id=deal.id, buyer=shopper, quantity=1).id for _ in range(8)]
    order_place(deal_id=deal.id, buyer=outsider, quantity=1)  # not theirs: never listed
    browser = _browser(shopper)

    def orders(page: str) -> list[int]:
        return [int(found) for found in re.findall(r"<tr><td>(\d+)</td>", page)]

    _check_walks(browser, "/me/orders/", orders, sorted(mine, reverse=True), 3)
    # An order placed meanwhile shows at the top; the older pages are as they were.
    newest = order_place(deal_id=deal.id, buyer=shopper, quantity=1).id
    pages, _ = _walk(browser, f"/me/orders/?{KEPT}", orders)
    assert pages[0] == [newest, *sorted(mine, reverse=True)[:2]]
    assert [order for page in pages for order in page] == [newest, *sorted(mine, reverse=True)]


def test_a_link_to_a_page_with_nothing_left_leads_to_the_start(shopper, make_live_deal, fund, monkeypatch):
    monkeypatch.setattr(views, "MY_ORDERS_PER_PAGE", 3)
    fund(shopper)
    deal = make_live_deal(deal_price=100, max_quantity=50, per_user_limit=50, tipping_point=40)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    browser = _browser(shopper)
    first = browser.get("/me/orders/").content.decode()
    assert _link(first, "next") is None and _link(first, "prev") is None
    gone = browser.get(f"/me/orders/?max_id={order.id}&{KEPT}")
    assert (gone.status_code, gone["Location"]) == (302, f"/me/orders/?{KEPT}")
    # A cursor that is not an id is no cursor.
    assert f"<tr><td>{order.id}</td>" in browser.get("/me/orders/?max_id=soon").content.decode()


def test_my_vouchers_past_a_hundred_are_all_shown(shopper, make_live_deal, fund):
    fund(shopper, 1_000_000)
    deal = make_live_deal(deal_price=100, max_quantity=150, per_user_limit=150, tipping_point=1)
    order_place(deal_id=deal.id, buyer=shopper, quantity=101)
    deal_tip_check(deal_id=deal.id)
    codes = list(Voucher.objects.filter(holder=shopper).order_by("-id").values_list("code", flat=True))
    assert len(codes) == 101

    def vouchers(page: str) -> list[str]:
        return re.findall(r'<code class="voucher-code">([^<]+)</code>', page)

    _check_walks(
        _browser(shopper), "/me/vouchers/", vouchers, [voucher_code_display(code) for code in codes], 100
    )
    chinese = _browser(shopper, "zh-hans").get("/me/vouchers/").content.decode()
    assert re.search(r'rel="next">更早的 &rarr;</a>', chinese)


def test_the_merchants_redemptions_are_all_read_latest_first(merchant, make_live_deal, fund, monkeypatch):
    monkeypatch.setattr(views_merchant, "REDEMPTIONS_PER_PAGE", 2)
    deal = make_live_deal(deal_price=100, tipping_point=1, max_quantity=10)
    buyers = [make_user(f"buyer{number}") for number in range(7)]
    for buyer in buyers:
        fund(buyer)
        order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    deal_tip_check(deal_id=deal.id)
    vouchers = list(Voucher.objects.filter(deal=deal).order_by("id"))
    for voucher in vouchers:
        voucher_redeem(code=voucher.code, by=merchant)
    # Redeemed in another order than issued, two of them at the same moment (the later id first).
    base = timezone.now() - timedelta(days=1)
    minutes = [3, 0, 5, 5, 1, 6, 2]
    for voucher, minute in zip(vouchers, minutes, strict=True):
        Voucher.objects.filter(id=voucher.id).update(redeemed_at=base + timedelta(minutes=minute))
    expected = [
        f"@{voucher.holder.username}"
        for voucher in sorted(vouchers, key=lambda v: (minutes[vouchers.index(v)], v.id), reverse=True)
    ]
    browser = _browser(merchant)

    def holders(page: str) -> list[str]:
        return re.findall(r"<td>(@buyer\d)</td></tr>", page)

    _check_walks(browser, "/merchant/redeem", holders, expected, 2)
    # The redeem form sends to the page's own address: after a redemption, the first page shows it.
    older = _link(browser.get("/merchant/redeem").content.decode(), "next")
    assert older is not None and 'action="/merchant/redeem"' in browser.get(older).content.decode()


def test_a_deals_orders_are_all_read_by_its_merchant(merchant, shopper, make_live_deal, fund, monkeypatch):
    monkeypatch.setattr(views_merchant, "DEAL_ORDERS_PER_PAGE", 4)
    fund(shopper)
    deal = make_live_deal(deal_price=100, max_quantity=50, per_user_limit=50, tipping_point=40)
    other = make_live_deal(deal_price=100, max_quantity=50, per_user_limit=50, tipping_point=40)
    placed = [order_place(deal_id=deal.id, buyer=shopper, quantity=1).id for _ in range(9)]
    order_place(deal_id=other.id, buyer=shopper, quantity=1)  # another deal's: not listed

    def orders(page: str) -> list[int]:
        return [int(found) for found in re.findall(r"<tr><td>(\d+)</td><td>@", page)]

    path = f"/merchant/deals/{deal.id}/"
    _check_walks(_browser(merchant), path, orders, sorted(placed, reverse=True), 4)
    assert Order.objects.filter(deal=deal).count() == 9


def test_the_deals_on_sale_are_all_read_ending_soonest_first(merchant, make_live_deal, monkeypatch):
    monkeypatch.setattr(views, "DEALS_PER_PAGE", 3)
    now = timezone.now()
    hours = [30, 5, 12, 5, 48, 7, 20]  # two end at the same moment: the earlier id first
    deals = [make_live_deal(ends_at=now + timedelta(hours=hour)) for hour in hours]
    make_live_deal(starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2))  # not on sale yet
    expected = [deal.id for deal in sorted(deals, key=lambda deal: (deal.ends_at, deal.id))]
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")

    def cards(page: str) -> list[int]:
        return [int(found) for found in re.findall(r'id="deal-card-(\d+)"', page)]

    _check_walks(browser, "/deals/", cards, expected, 3)
    first = browser.get("/deals/").content.decode()
    assert re.search(r'rel="next">Ending later &rarr;</a>', first)
    # A deal that stopped selling since its page was read keeps its place as a cursor.
    older = _link(first, "next")
    assert older is not None
    Deal.objects.filter(id=expected[2]).update(state="sold_out")
    assert cards(browser.get(older).content.decode()) == expected[3:6]
