"""Forgetting a password, in Chromium on a 375px phone, in Chinese and in English: ask for a reset, open
the link from the e-mail a real SMTP server received, mistype, choose a new password, log in with it;
the link then no longer works, and the API tokens made with the old password are revoked."""

import re
from email.header import decode_header, make_header
from typing import Any

import pytest
from django.test import Client

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import make_user

SMALL_PHONE = {"width": 375, "height": 812}
WORDS = {
    "zh-CN": {
        "subject": "重置你在 Weituan 微团 的密码",
        "forgot": "忘记密码？",
        "mismatch": "输入的两个密码不一致。",
        "changed": "密码已修改",
        "used": "此链接已失效",
    },
    "en-US": {
        "subject": "Reset your password on Weituan 微团",
        "forgot": "Forgot your password?",
        "mismatch": "The two password fields didn’t match.",
        "changed": "Password changed",
        "used": "This link no longer works",
    },
}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_forgotten_password_is_reset_from_the_mailed_link(
    live_server: Any, browser: Any, smtp_inbox: Any, settings: Any, locale: str
) -> None:
    from playwright.sync_api import expect

    words = WORDS[locale]
    settings.SITE_URL = live_server.url
    settings.SITE_NAME = "Weituan 微团"
    username = "forgetful_" + locale[:2]
    user = make_user(username, password="the old password 1")
    old_token, _ = access_token_issue(user=user)

    context = browser.new_context(viewport=SMALL_PHONE, locale=locale)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(live_server.url + "/accounts/login")
        page.get_by_role("link", name=words["forgot"]).click()
        page.locator("[name=email]").fill(f"{username.upper()}@example.test")
        page.locator("form[action='/accounts/password_reset/'] button[type=submit]").click()
        page.wait_for_url(live_server.url + "/accounts/password_reset/done/")

        message = smtp_inbox.wait(1)[0]
        assert message["To"] == f"{username}@example.test"
        assert str(make_header(decode_header(message["Subject"]))) == words["subject"]
        body = message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")
        links = re.findall(r"\S+/accounts/reset/\S+/", body)
        assert len(links) == 1 and links[0].startswith(live_server.url + "/accounts/reset/")

        page.goto(links[0])
        page.locator("[name=new_password1]").fill("a brand new secret 7")
        page.locator("[name=new_password2]").fill("a different secret 7")
        page.locator("main form button[type=submit]").click()
        expect(page.locator(".field.has-error .error")).to_have_text(words["mismatch"])
        assert page.evaluate("() => document.documentElement.scrollWidth") <= SMALL_PHONE["width"]

        page.locator("[name=new_password1]").fill("a brand new secret 7")
        page.locator("[name=new_password2]").fill("a brand new secret 7")
        page.locator("main form button[type=submit]").click()
        expect(page.locator("main h1")).to_have_text(words["changed"])

        # The link worked once.
        page.goto(links[0])
        expect(page.locator("main h1")).to_have_text(words["used"])

        page.goto(live_server.url + "/accounts/login")
        login = page.locator("form[action^='/accounts/login']")
        login.locator("[name=username]").fill(username)
        login.locator("[name=password]").fill("a brand new secret 7")
        login.locator("button[type=submit]").click()
        page.wait_for_url(live_server.url + "/")
        expect(page.locator("#nav-me")).to_be_visible()
    finally:
        context.close()

    user.refresh_from_db()
    assert user.check_password("a brand new secret 7")
    api = Client().get("/api/v1/accounts/verify_credentials", HTTP_AUTHORIZATION=f"Bearer {old_token}")
    assert (api.status_code, api.json()["code"]) == (401, "invalid_token")
