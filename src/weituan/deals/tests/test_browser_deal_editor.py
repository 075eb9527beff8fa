"""The deal editor on a 375-pixel phone, in Chromium: a merchant writes a team deal section by section,
sees the team's fields only once the team mode is on (and the refund window only with the policy that
has one), is refused for a team price above the deal price with the sentence beside that box, focused
and on screen and everything typed still there, fixes it, saves the draft and publishes it; the page
never scrolls sideways. Without scripts the modes show and hide all the same."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.models import Deal, DealState, RefundPolicy

PASSWORD = "a long enough secret 42"
WIDTH, HEIGHT = 375, 667


def _local_input(moment: Any) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def _log_in_to_the_editor(page: Any, base: str) -> None:
    page.goto(f"{base}/accounts/login?next=/merchant/deals/new")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill("noodle_bar")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/merchant/deals/new")


def _fits(page: Any) -> None:
    """Nothing makes the page scroll sideways, and every box of the editor is within the screen."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths == [WIDTH, WIDTH]
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('.deal-editor :is(input, select, textarea, button)')]
              .filter((box) => box.type !== 'hidden' && box.offsetParent !== null)
              .filter((box) => { const r = box.getBoundingClientRect(); return r.left < 0 || r.right > innerWidth; })
              .map((box) => box.name)"""
    )
    assert overflowing == []


def _on_screen(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT


TYPED = {
    "title": "牛肉面双人套餐",
    "description": "两碗牛肉面，两份小菜",
    "list_price": "98",
    "deal_price": "59.90",
    "max_quantity": "30",
    "tipping_point": "2",
    "per_user_limit": "2",
    "team_size": "3",
    "team_window_hours": "12",
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_team_deal_is_written_fixed_and_published_on_a_phone(live_server: Any, phone_page: Any) -> None:
    make_user("noodle_bar", merchant=True, password=PASSWORD)
    page = phone_page
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    _log_in_to_the_editor(page, live_server.url)
    editor = page.locator("form.deal-editor")
    legends = editor.locator("legend").all_inner_texts()
    assert legends == ["基本信息", "价格", "数量与限购", "时间", "拼团与秒杀", "退款规则", "图片"]
    # An ordinary deal to begin with: neither mode's fields, the default policy's refund window.
    for name in ("team_price", "team_size", "team_window_hours", "flash_batches"):
        assert editor.locator(f"[name={name}]").is_hidden(), name
    assert editor.locator("[name=refund_window_days]").is_visible()
    _fits(page)
    # The boxes are a thumb's height, and their text large enough that the phone does not zoom in.
    title_box = editor.locator("[name=title]")
    assert title_box.bounding_box()["height"] >= 44
    assert title_box.evaluate("(box) => getComputedStyle(box).fontSize") == "16px"
    assert editor.locator("[name=max_quantity]").get_attribute("inputmode") == "numeric"

    now = timezone.now()
    starts, ends = _local_input(now - timedelta(minutes=5)), _local_input(now + timedelta(days=3))
    editor.locator("label[for=id_team_mode]").click()
    assert editor.locator("[name=team_price]").is_visible()
    assert editor.locator("[name=flash_batches]").is_hidden()
    for name, value in TYPED.items():
        editor.locator(f"[name={name}]").fill(value)
    editor.locator("[name=team_price]").fill("69")  # above the deal price: refused
    editor.locator("[name=starts_at]").fill(starts)
    editor.locator("[name=ends_at]").fill(ends)
    editor.locator("[name=refund_policy]").select_option(RefundPolicy.ANYTIME)
    assert editor.locator("[name=refund_window_days]").is_hidden()
    _fits(page)
    editor.locator("button[type=submit]").click()
    page.wait_for_load_state()

    # Refused: nothing saved, the sentence beside the team price, which has the focus and is on screen.
    assert Deal.objects.count() == 0
    problem = page.locator("#field-team_price .errorlist")
    assert problem.inner_text() == "拼团价必须低于团购价。"
    assert page.locator("[data-first-problem]").get_attribute("id") == "field-team_price"
    assert page.evaluate("() => document.activeElement.name") == "team_price"
    assert page.locator("[name=team_price]").get_attribute("aria-describedby").endswith("id_team_price_error")
    assert _on_screen(page, "#field-team_price .errorlist") and _on_screen(page, "[name=team_price]")
    # Everything typed is still there, the team mode on and the policy chosen.
    editor = page.locator("form.deal-editor")
    for name, value in {**TYPED, "team_price": "69", "starts_at": starts, "ends_at": ends}.items():
        assert editor.locator(f"[name={name}]").input_value() == value, name
    assert editor.locator("#id_team_mode").is_checked()
    assert editor.locator("[name=refund_policy]").input_value() == RefundPolicy.ANYTIME
    _fits(page)

    editor.locator("[name=team_price]").fill("45")
    editor.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/merchant/deals/\d+/$"))
    deal = Deal.objects.get()
    assert (deal.title, deal.state, deal.deal_price, deal.team_price, deal.team_size) == (
        "牛肉面双人套餐",
        DealState.DRAFT,
        5990,
        4500,
        3,
    )
    assert (deal.team_window_hours, deal.refund_policy, deal.flash_sale) == (12, RefundPolicy.ANYTIME, False)
    _fits(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"form[action='/merchant/deals/{deal.id}/publish'] button").click()
    page.locator(f"form[action='/merchant/deals/{deal.id}/publish']").wait_for(state="detached")
    deal.refresh_from_db()
    assert deal.state == DealState.LIVE and deal.post_id is not None
    assert problems == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_without_scripts_the_modes_still_show_their_fields_and_a_problem_is_focused(
    live_server: Any, browser: Any
) -> None:
    make_user("noodle_bar", merchant=True, password=PASSWORD)
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT}, locale="zh-CN", java_script_enabled=False
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        _log_in_to_the_editor(page, live_server.url)
        editor = page.locator("form.deal-editor")
        assert editor.locator("[name=flash_batches]").is_hidden()
        editor.locator("label[for=id_flash_mode]").click()
        assert editor.locator("[name=flash_batches]").is_visible()
        now = timezone.now()
        for name, value in {
            "title": "秒杀凉皮",
            "list_price": "20",
            "deal_price": "9.9",
            "max_quantity": "10",
            "tipping_point": "1",
            "starts_at": _local_input(now + timedelta(hours=1)),
            "ends_at": _local_input(now + timedelta(days=1)),
            # Five units where the deal sells ten: refused beside the batches.
            "flash_batches": f"{timezone.localtime(now + timedelta(hours=2)):%Y-%m-%d %H:%M}, 5",
        }.items():
            editor.locator(f"[name={name}]").fill(value)
        editor.locator("button[type=submit]").click()
        page.wait_for_load_state()
        assert Deal.objects.count() == 0
        assert (
            page.locator("#field-flash_batches .errorlist").inner_text()
            == "各批秒杀加起来要等于最多售出件数。"
        )
        assert page.locator("[name=flash_batches]").is_visible()
        assert page.evaluate("() => document.activeElement.name") == "flash_batches"
        assert page.evaluate("() => document.documentElement.scrollWidth") == WIDTH
    finally:
        context.close()
