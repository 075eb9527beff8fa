"""The deal pages' tables on a phone: headers, figures and buttons stay whole words on one line, and the
page does not scroll sideways."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal

PASSWORD = "a long enough secret 42"

# The lines each cell's text is laid out on (a cell whose word is split over two lines has two).
CELL_LINES = """(cells) => cells.map((cell) => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
  return [cell.textContent.trim(), tops.size];
})"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_my_orders_keeps_its_headers_and_figures_whole_on_a_phone(
    live_server: Any, browser: Any, locale: str
) -> None:
    shop = make_user("tea_house", merchant=True)
    shopper = make_user("meimei", password=PASSWORD)
    wallet_top_up(user=shopper, amount=10_000_000)
    title = "西湖龙井明前特级茶叶礼盒装二百五十克送长辈送朋友新茶上市限时团购 West Lake Longjing gift box"
    deal = live_deal(shop, title=title, tipping_point=50, max_quantity=100, per_user_limit=20)
    for _ in range(12):  # order ids of two digits
        order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, locale=locale, extra_http_headers={"Accept-Language": locale}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login?next=/me/orders/")
        form = page.locator("form[action^='/accounts/login']")
        form.locator("[name=username]").fill("meimei")
        form.locator("[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/me/orders/")
        headers = page.eval_on_selector_all("table th", CELL_LINES)
        assert [text for text, _ in headers][:5] == (
            ["#", "Deal", "Qty", "Amount", "State"]
            if locale == "en"
            else ["#", "团购", "数量", "金额", "状态"]
        )
        figures = page.eval_on_selector_all(
            "table tr td:nth-child(1), table tr td:nth-child(3), table tr td:nth-child(4)", CELL_LINES
        )
        assert len(figures) == 36
        # Each order's button ("取消", "Cancel") stays one word on one line, not a letter a line.
        buttons = page.eval_on_selector_all("table td button", CELL_LINES)
        assert [text for text, _ in buttons] == ["Cancel" if locale == "en" else "取消"] * 12
        split = [text for text, lines in headers + figures + buttons if text and lines != 1]
        assert split == []
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths == [375, 375]
    finally:
        context.close()
