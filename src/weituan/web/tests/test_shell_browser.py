"""The page shell in Chromium at phone size: htmx loads, the header's links are big enough to tap, and a
profile's relation menu asks before a block."""

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Block, Follow
from weituan.microblog.services.relations import follow_create

PASSWORD = "a long enough secret 42"


def _log_in(page, site: str, then: str) -> None:
    """Log in as xiaoming through the log-in form, and wait to be sent on to `then`."""
    page.goto(f"{site}/accounts/login" + (f"?next={then}" if then != "/" else ""))
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill("xiaoming")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{site}{then}")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_home_page_renders_in_chromium_with_htmx_loaded(live_server, phone_page):
    phone_page.goto(live_server.url + "/")
    assert "微团" in phone_page.title()
    phone_page.wait_for_function("() => window.htmx !== undefined")
    assert phone_page.evaluate("() => document.documentElement.scrollWidth") <= 390


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_block_is_asked_for_before_it_ends_the_follows(live_server, phone_page):
    """Block sits under Mute in the profile's menu; a tap on it asks first, and saying no changes
    nothing (a block ends the follows both ways, and unblocking does not bring them back)."""
    from playwright.sync_api import expect

    reader = make_user("xiaoming", display_name="小明", password=PASSWORD)
    shop = make_user("tea_house", display_name="春风茶庄")
    follow_create(follower=reader, followee_id=shop.pk)
    follow_create(follower=shop, followee_id=reader.pk)
    page = phone_page
    _log_in(page, live_server.url, "/@tea_house")
    page.wait_for_function("() => window.htmx !== undefined")

    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.locator(".profile-actions summary").click()
    page.locator("button[value=block]").click()
    expect(page.locator("button[value=block]")).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert asked == ["确定拉黑 @tea_house 吗？你们将互相取消关注，也看不到对方的微博。"]
    assert Follow.objects.count() == 2 and not Block.objects.exists()

    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.locator("button[value=block]").click()
    expect(page.locator(".profile-actions button[value=unblock]")).to_have_text("取消拉黑")
    assert Block.objects.filter(blocker=reader, blocked=shop).count() == 1
    assert not Follow.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_headers_links_and_the_compose_choices_are_big_enough_to_tap_on_a_phone(live_server, phone_page):
    """ "我" is one character: as a bare link it was 15 px wide and 24 px tall, next to its neighbours."""
    make_user("xiaoming", display_name="小明", password=PASSWORD)
    page = phone_page
    _log_in(page, live_server.url, "/")
    sizes = page.eval_on_selector_all(
        ".top-nav .nav-item, .top-nav summary",
        "els => els.map((e) => [e.textContent.trim(), Math.round(e.getBoundingClientRect().width),"
        " Math.round(e.getBoundingClientRect().height)])",
    )
    assert [text for text, _, _ in sizes] == ["首页", "热搜", "团购", "消息", "我", "⋯"]
    small = [(text, width, height) for text, width, height in sizes if width < 32 or height < 32]
    assert small == []
    # The compose box's choices of who sees and who may quote the post (they were 19 px tall).
    choices = page.eval_on_selector_all(
        "#compose select", "els => els.map((e) => [e.name, Math.round(e.getBoundingClientRect().height)])"
    )
    assert [name for name, height in choices if height >= 32] == ["visibility", "quote_policy"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_search_topics_trending_and_notifications_fit_a_phone(live_server, phone_page):
    """Long names, an unbroken run of text and a long link stay inside a phone's width on every page
    that lists posts or people other than home."""
    from weituan.microblog.services.posts import post_create

    reader = make_user("xiaoming", display_name="小明", password=PASSWORD)
    shop = make_user("tea_house", display_name="春风茶庄杭州西湖龙井老字号旗舰店官方账号", merchant=True)
    follow_create(follower=shop, followee_id=reader.pk)
    text = (
        "#明前龙井# 新茶上市"
        + "狮峰梅家坞龙坞翁家山" * 6
        + " https://shop.example/"
        + "longwell" * 8
        + " @xiaoming"
    )
    post_create(author=shop, text=text)
    page = phone_page
    _log_in(page, live_server.url, "/")
    for path, shown in [
        ("/search?q=龙井", "狮峰梅家坞"),
        ("/topics/明前龙井", "狮峰梅家坞"),
        ("/trending", "热搜"),  # the page itself: one post makes no trend
        ("/notifications", "春风茶庄"),
    ]:
        page.goto(live_server.url + path)
        assert shown in page.locator("main").inner_text(), path
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, path
