"""The newcomer's first visit, in Chromium at phone size: sign up, follow a merchant, read the merchant's
post on the home timeline, repost it with a comment; the merchant then sees the repost notification."""

import re

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import NotificationKind, Post, PostKind
from weituan.microblog.services.posts import post_create

PHONE = {"viewport": {"width": 390, "height": 844}, "locale": "zh-CN"}


def _new_page(browser):
    context = browser.new_context(**PHONE)
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_newcomer_reposts_a_merchant_post_and_the_merchant_is_notified(live_server, browser):
    from playwright.sync_api import expect

    merchant = make_user("tea_house", display_name="春风茶庄", merchant=True, password="merchant pass 123")
    offer = post_create(author=merchant, text="明前龙井新茶上市 #春茶# 欢迎品尝")

    newcomer_context, page = _new_page(browser)
    merchant_context, merchant_page = _new_page(browser)
    try:
        # Sign up through the sign-up page.
        page.goto(live_server.url + "/")
        page.locator("#nav-signup").click()
        signup = page.locator("form[action='/accounts/signup']")
        signup.locator("[name=username]").fill("xiaoming")
        signup.locator("[name=display_name]").fill("小明")
        signup.locator("[name=email]").fill("xiaoming@example.test")
        signup.locator("[name=password1]").fill("a long enough secret 42")
        signup.locator("[name=password2]").fill("a long enough secret 42")
        signup.locator("button[type=submit]").click()
        page.wait_for_url(live_server.url + "/")
        expect(page.locator("#compose")).to_be_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390

        # Follow the merchant from their profile (htmx swaps the button in place).
        page.goto(f"{live_server.url}/@tea_house")
        expect(page.locator("h1.name")).to_contain_text("春风茶庄")
        expect(page.locator("h1.name .badge-v")).to_have_text("V")
        page.locator(".follow-button").click()
        expect(page.locator(".follow-button")).to_have_attribute("data-following", "1")
        expect(page.locator("#flash")).to_contain_text("已关注")

        # The merchant's post is on the newcomer's home timeline.
        page.locator("a.brand").click()
        card = page.locator(f"#post-{offer.id}")
        expect(card).to_contain_text("明前龙井新茶上市")
        expect(card.locator("a.hashtag")).to_have_text("#春茶#")

        # Repost it with a comment, through the small form under the card.
        card.locator(".action-repost").click()
        box = card.locator("[data-panel=repost] textarea")
        box.fill("好茶，推荐给大家")
        expect(card.locator("[data-panel=repost] [data-counter]")).to_have_text("16 / 280")
        card.locator("[data-panel=repost] button[type=submit]").click()
        expect(page.locator("#flash")).to_contain_text("已转发")
        expect(page.locator(f"#post-{offer.id} .action-repost")).to_have_text(re.compile(r"转发\s*1"))

        repost = Post.objects.get(kind=PostKind.REPOST, parent_id=offer.id)
        assert (repost.author.username, repost.comment, repost.root_id) == (
            "xiaoming",
            "好茶，推荐给大家",
            offer.id,
        )

        # The merchant logs in elsewhere and sees the repost notification.
        merchant_page.goto(live_server.url + "/accounts/login")
        login = merchant_page.locator("form[action^='/accounts/login']")
        login.locator("[name=username]").fill("tea_house")
        login.locator("[name=password]").fill("merchant pass 123")
        login.locator("button[type=submit]").click()
        merchant_page.wait_for_url(live_server.url + "/")
        # One follow and one repost are unread.
        expect(merchant_page.locator("#unread-badge")).to_have_text("2")
        merchant_page.locator("#nav-notifications").click()
        notice = merchant_page.locator(f".notification[data-kind={NotificationKind.REPOST.value}]")
        expect(notice).to_contain_text("小明")
        expect(notice).to_contain_text("转发了你的微博")
        expect(notice).to_contain_text("好茶，推荐给大家")
        expect(
            merchant_page.locator(f".notification[data-kind={NotificationKind.FOLLOW.value}]")
        ).to_contain_text("小明")
        # Viewing the page marked them read.
        merchant_page.reload()
        expect(merchant_page.locator("#unread-badge")).to_have_text("")
    finally:
        newcomer_context.close()
        merchant_context.close()
