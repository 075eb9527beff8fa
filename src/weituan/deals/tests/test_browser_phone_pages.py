"""The deal pages fit a phone's width in both languages: nothing makes the page scroll sideways."""

from typing import Any

import pytest

from weituan.core.testing import make_user

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
