"""On a post's page, in Chromium at phone size, a repost made there shows at once in the page's repost
list and repost tree (htmx swaps them with the card), without a reload."""

import re
from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Post, PostKind
from weituan.microblog.services.posts import post_create

PASSWORD = "a long enough secret 42"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_repost_from_the_post_page_shows_in_its_list_and_tree(live_server: Any, phone_page: Any) -> None:
    from playwright.sync_api import expect

    merchant = make_user("tea_house", display_name="春风茶庄", merchant=True)
    make_user("xiaoming", display_name="小明", password=PASSWORD)
    offer = post_create(author=merchant, text="明前龙井新茶上市")
    page = phone_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login?next=/p/{offer.id}")
    login = page.locator("form[action^='/accounts/login']")
    login.locator("[name=username]").fill("xiaoming")
    login.locator("[name=password]").fill(PASSWORD)
    login.locator("button[type=submit]").click()
    page.wait_for_url(f"**/p/{offer.id}")
    expect(page.locator("#cascade-size")).to_have_text("0")
    expect(page.locator("#reposts-section")).to_contain_text("还没有人转发")

    card = page.locator(f"#post-{offer.id}")
    card.locator(".action-repost").click()
    card.locator("[data-panel=repost] textarea").fill("好茶")
    card.locator("[data-panel=repost] button[type=submit]").click()
    expect(page.locator("#flash")).to_contain_text("已转发")

    repost = Post.objects.get(kind=PostKind.REPOST, parent_id=offer.id)
    expect(page.locator(f"#post-{offer.id} .action-repost")).to_have_text(re.compile(r"转发\s*1"))
    expect(page.locator(f"#reposts-section a[href='/p/{repost.id}']")).to_be_visible()
    expect(page.locator("#reposts-section")).to_contain_text("小明")
    expect(page.locator("#cascade-size")).to_have_text("1")
    expect(page.locator(f"#repost-tree a[href='/p/{repost.id}']")).to_have_text("好茶")
    # One of each on the page: the sections were replaced, not added to.
    assert page.locator("#reposts-section").count() == 1 and page.locator("#repost-tree").count() == 1
    assert page.url.endswith(f"/p/{offer.id}")
    assert problems == []
