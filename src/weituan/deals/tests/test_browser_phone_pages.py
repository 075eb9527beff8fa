"""The deal pages, and the deal card with its picture, fit a phone's width: nothing makes the page scroll
sideways."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.deals.tests.conftest import live_deal
from weituan.deals.tests.test_deal_card_picture import _png
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import repost_create

PASSWORD = "a long enough secret 42"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_the_deal_editor_fits_a_phone(live_server: Any, browser: Any, locale: str) -> None:
    make_user("tea_house", merchant=True, password=PASSWORD)
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, locale=locale, extra_http_headers={"Accept-Language": locale}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(f"{live_server.url}/accounts/login?next=/merchant/deals/new")
        form = page.locator("form[action^='/accounts/login']")
        form.locator("[name=username]").fill("tea_house")
        form.locator("[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/merchant/deals/new")
        # The refund policies are sentences: the longest must not push the page past the screen.
        page.select_option("[name=refund_policy]", "on_expiry")
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths == [375, 375]
        policy = page.locator("[name=refund_policy]").bounding_box()
        assert policy is not None and policy["x"] + policy["width"] <= 375
        assert problems == []
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_deal_cards_picture_fits_a_phone(live_server: Any, browser: Any) -> None:
    shop = make_user("tea_house", merchant=True)
    fan = make_user("tea_fan")
    upload = media_upload(owner=shop, upload=_png(1600, 600))  # a wide picture, cropped to a square
    title = "西湖龙井明前特级茶叶礼盒装二百五十克送长辈送朋友新茶上市限时团购"
    deal = live_deal(shop, title=title, media_ids=(upload.id,))
    hop = repost_create(reposter=fan, post_id=deal.post_id, comment="好茶")
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        # The post page, a repost carrying the card in its grey box, and the shop's timeline.
        for path in (f"/p/{deal.post_id}", f"/p/{hop.id}", "/@tea_house"):
            page.goto(f"{live_server.url}{path}")
            picture = page.locator(f"#deal-card-{deal.id} .deal-card-picture img").first
            picture.scroll_into_view_if_needed()
            page.wait_for_function(
                "(img) => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
            )
            assert picture.get_attribute("alt") == title
            assert picture.get_attribute("loading") == "lazy"
            assert picture.get_attribute("src") == upload.thumbnail.url
            box = picture.bounding_box()
            assert box is not None and (round(box["width"]), round(box["height"])) == (72, 72), path
            for card in page.locator(f"#deal-card-{deal.id}").all():
                card_box = card.bounding_box()
                assert card_box is not None and card_box["x"] >= 0
                assert card_box["x"] + card_box["width"] <= 375, path
            widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert widths == [375, 375], path
        assert problems == []
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_deal_with_several_tall_pictures_keeps_its_card_on_a_phones_first_screen(
    live_server: Any, browser: Any
) -> None:
    shop = make_user("tea_house", merchant=True)
    uploads = [media_upload(owner=shop, upload=_png(600, 1800)) for _ in range(3)]  # tall ones
    deal = live_deal(shop, title="龙井礼盒", media_ids=tuple(upload.id for upload in uploads))
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/deals/{deal.id}/")
        pictures = page.locator(".deal-gallery img")
        assert pictures.count() == 3
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=pictures.first.element_handle()
        )
        first = pictures.first.bounding_box()
        # One picture's height, four by three of the screen's width, whatever the pictures' own shape.
        assert first is not None and round(first["height"]) == round(first["width"] * 3 / 4)
        # The second picture peeks in at the screen's edge (a good thumb's width): there is more to swipe to.
        second = pictures.nth(1).bounding_box()
        assert second is not None and second["x"] < 375 - 30 and second["x"] + second["width"] > 375
        card = page.locator(f"#deal-card-{deal.id}").bounding_box()
        assert card is not None and card["y"] + card["height"] < 812
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths == [375, 375]
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_buy_button_appears_when_the_deal_comes_on_sale_while_its_page_is_open(
    live_server: Any, browser: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from weituan.deals.models import Deal
    from weituan.deals.services.deals import deal_start

    shop = make_user("tea_house", merchant=True)
    make_user("tea_fan", password=PASSWORD)
    starts = timezone.now() + timedelta(hours=1)
    deal = live_deal(shop, title="明前龙井", starts_at=starts, ends_at=starts + timedelta(days=1))
    assert deal.state == "scheduled"
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="en")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login?next=/deals/{deal.id}/")
        form = page.locator("form[action^='/accounts/login']")
        form.locator("[name=username]").fill("tea_fan")
        form.locator("[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_url(f"**/deals/{deal.id}/")
        assert page.locator("button:has-text('Buy at')").count() == 0
        # Its start comes while the shopper looks at it: the card's next poll (every 15 s) finds it on sale.
        Deal.objects.filter(id=deal.id).update(starts_at=timezone.now() - timedelta(seconds=1))
        assert deal_start(deal_id=deal.id)
        page.locator("button:has-text('Buy at')").wait_for(state="visible", timeout=25_000)
        assert page.locator(f"#deal-card-{deal.id}").get_attribute("data-on-sale") == "1"
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_invite_link_is_copied_with_one_tap(live_server: Any, browser: Any) -> None:
    """Beside a link to share (an invite, a team, a post), a button copies it: selecting the text of a
    box is fiddly on a phone. The button says it is done."""
    make_user("tea_fan", password=PASSWORD)
    context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login?next=/me/wallet/")
        form = page.locator("form[action^='/accounts/login']")
        form.locator("[name=username]").fill("tea_fan")
        form.locator("[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/me/wallet/")
        link = page.locator("#invite-url").input_value()
        assert "/s/" in link
        button = page.locator("button[data-copy='#invite-url']")
        assert button.inner_text() == "复制链接"
        button.click()
        page.wait_for_function(
            "() => document.querySelector(\"[data-copy='#invite-url']\").textContent === '已复制'"
        )
        assert page.evaluate("() => navigator.clipboard.readText()") == link
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths == [375, 375]
    finally:
        context.close()
