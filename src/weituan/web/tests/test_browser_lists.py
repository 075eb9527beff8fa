"""Groups (分组) on a phone: from the menu, make a group, add a followed shop to it, and read the group's
timeline on the home page's tab; nothing runs wider than the screen."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import FollowListMember
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

PASSWORD = "a long enough secret 42"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_phone_user_makes_a_group_of_a_followed_shop_and_reads_it(live_server: Any, browser: Any) -> None:
    shop = make_user("tea_house", display_name="茶馆", merchant=True)
    friend = make_user("bob", display_name="Bob")
    reader = make_user("meimei", password=PASSWORD)
    for followee in (shop, friend):
        follow_create(follower=reader, followee_id=followee.pk)
    offer = post_create(author=shop, text="明前龙井今晚开团 #春茶#")
    chatter = post_create(author=friend, text="今天天气不错")
    context = browser.new_context(
        viewport={"width": 375, "height": 812},
        locale="zh-CN",
        extra_http_headers={"Accept-Language": "zh-CN"},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login?next=/")
        form = page.locator("form[action^='/accounts/login']")
        form.locator("[name=username]").fill("meimei")
        form.locator("[name=password]").fill(PASSWORD)
        form.locator("button[type=submit]").click()
        page.wait_for_url(f"{live_server.url}/")

        page.locator("details.menu summary").first.click()
        page.locator("#nav-groups").click()
        page.wait_for_url("**/lists")
        page.locator("#group-title").fill("常去的店")
        page.locator("#group-create").click()
        page.wait_for_url("**/lists/*")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        offered = page.locator("#group-offered li", has_text="@tea_house")
        offered.locator("button[value=add]").click()
        page.locator("#group-members li", has_text="@tea_house").wait_for()
        assert "已加入「常去的店」。" in page.locator("#messages").inner_text()
        assert list(FollowListMember.objects.values_list("account_id", flat=True)) == [shop.pk]

        page.locator("#group-read").click()
        page.wait_for_url("**/?list=*")
        page.locator(f"#post-{offer.id}").wait_for()
        assert page.locator(f"#post-{chatter.id}").count() == 0
        assert page.locator(".group-tabs a.current").inner_text() == "常去的店"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # The whole timeline is one tap away, with both posts.
        page.locator(".group-tabs a", has_text="全部").click()
        page.wait_for_url(f"{live_server.url}/")
        page.locator(f"#post-{chatter.id}").wait_for()
        assert page.locator(f"#post-{offer.id}").count() == 1
    finally:
        context.close()
