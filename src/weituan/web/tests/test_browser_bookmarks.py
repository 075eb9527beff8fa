"""Bookmarking on a phone: the card's actions, the bookmark among them, fit the card without scrolling
sideways or breaking a label; a tap keeps the post in place, and the menu's "My bookmarks" shows it."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Bookmark
from weituan.microblog.services.interactions import like_add
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

PASSWORD = "a long enough secret 42"

# The lines each control's label is laid out on (a label broken inside a word has two).
LABEL_LINES = """(controls) => controls.map((control) => {
  const range = document.createRange();
  range.selectNodeContents(control);
  const tops = new Set([...range.getClientRects()].map((rect) => Math.round(rect.top)));
  return [control.textContent.trim(), tops.size];
})"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_post_is_bookmarked_from_the_timeline_and_found_under_my_bookmarks(
    live_server: Any, browser: Any, locale: str
) -> None:
    shop = make_user("tea_house", merchant=True)
    reader = make_user("meimei", password=PASSWORD)
    follow_create(follower=reader, followee_id=shop.pk)
    kept = post_create(author=shop, text="明前龙井今晚开团 #春茶#")
    post_create(author=reader, text="我自己的帖子")  # an own post: its card also offers Delete
    for n in range(12):  # counts of two digits beside the labels
        like_add(user=make_user(f"fan{n}"), post_id=kept.id)
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, locale=locale, extra_http_headers={"Accept-Language": locale}
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
        for footer in page.locator(".post-actions").all():
            fits = footer.evaluate("(el) => el.scrollWidth <= el.clientWidth")
            assert fits, footer.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # No label is broken over two lines.
        broken = page.eval_on_selector_all(".post-actions button, .post-actions a", LABEL_LINES)
        assert [label for label, lines in broken if lines != 1] == []

        card = page.locator(f"#post-{kept.id}")
        card.locator("button.action-bookmark").click()
        card.locator("button.action-bookmark.bookmarked").wait_for()
        assert card.locator("button.action-bookmark").get_attribute("aria-pressed") == "true"
        assert Bookmark.objects.filter(user=reader, post=kept).exists()

        page.locator("details.menu summary").click()
        page.locator("details.menu a[href='/bookmarks']").click()
        page.wait_for_url("**/bookmarks")
        assert page.locator(".post").count() == 1
        assert "明前龙井今晚开团" in page.locator(f"#post-{kept.id}").inner_text()
    finally:
        context.close()
