"""A post card's action buttons in Chromium at phone width: each is a finger's size to tap (at least 44 px
tall and wide, as Apple's and WCAG's target size guidance asks), and the page does not scroll sideways."""

from collections.abc import Iterator
from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.services.interactions import like_add
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

PASSWORD = "a long enough secret 42"
PHONE_WIDTH = 375
TAP_SIDE = 44

ACTIONS_MEASURED = """els => els.map((e) => {
    const box = e.getBoundingClientRect();
    return [e.textContent.trim(), box.width, box.height, box.right];
})"""


@pytest.fixture
def narrow_page(browser: Any, request: Any) -> Iterator[Any]:
    """A browser context 375 px wide (an iPhone's width), in the language the test asks for."""
    context = browser.new_context(viewport={"width": PHONE_WIDTH, "height": 812}, locale=request.param)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill(username)
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{base_url}/")


def _too_small(page: Any) -> tuple[list[list[Any]], list[list[Any]]]:
    """Every action of every card, and those smaller than a finger or reaching past the screen's edge."""
    actions = page.eval_on_selector_all(".post-actions button, .post-actions a", ACTIONS_MEASURED)
    small = [
        action
        for action in actions
        if action[1] < TAP_SIDE or action[2] < TAP_SIDE or action[3] > PHONE_WIDTH
    ]
    return actions, small


def _scroll_width(page: Any) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("narrow_page", ["zh-CN", "en-US"], indirect=True)
def test_a_readers_post_actions_are_big_enough_to_tap_at_375px(live_server: Any, narrow_page: Any) -> None:
    """A shop's post with counts, and the reader's own post, which adds Edit, Pin and Delete (27 px tall
    before, as bare text buttons)."""
    reader = make_user("xiaoming", display_name="小明", password=PASSWORD)
    shop = make_user("tea_house", display_name="春风茶庄")
    follow_create(follower=reader, followee_id=shop.pk)
    offer = post_create(author=shop, text="新茶上市 #团购# 两人成团")
    like_add(user=shop, post_id=offer.id)
    post_create(author=reader, text="今天喝了龙井")
    page = narrow_page
    _log_in(page, live_server.url, "xiaoming")
    page.wait_for_selector(f"#post-{offer.id} .post-actions")

    actions, small = _too_small(page)
    # Repost, comment, like, bookmark and share on each card; the own post adds edit, pin and delete.
    assert len(actions) == 5 + 8
    assert small == []
    assert _scroll_width(page) <= PHONE_WIDTH


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("narrow_page", ["zh-CN"], indirect=True)
def test_a_visitors_post_actions_are_big_enough_to_tap_at_375px(live_server: Any, narrow_page: Any) -> None:
    """A visitor's actions are links to log in first, measured on the shop's profile."""
    shop = make_user("tea_house", display_name="春风茶庄")
    post_create(author=shop, text="新茶上市 #团购#")
    page = narrow_page
    page.goto(f"{live_server.url}/@tea_house")
    page.wait_for_selector(".post-actions a")

    actions, small = _too_small(page)
    assert [text for text, *_ in actions] == ["转发", "评论", "♡ 赞"]
    assert small == []
    assert _scroll_width(page) <= PHONE_WIDTH
