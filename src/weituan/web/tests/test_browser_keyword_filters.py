"""Muting a word on a phone: from the menu to the muted words page, a word added with a tap, and the
home timeline folding a post that has it behind a bar that opens it."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import KeywordFilter
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

PASSWORD = "a long enough secret 42"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_word_muted_on_a_phone_folds_a_post_on_home(live_server: Any, phone_page: Any) -> None:
    shop = make_user("drama_club", merchant=True)
    reader = make_user("meimei", password=PASSWORD)
    follow_create(follower=reader, followee_id=shop.pk)
    spoiler = post_create(author=shop, text="大结局剧透：凶手是管家")
    calm = post_create(author=shop, text="今晚八点开播")
    page = phone_page
    page.goto(f"{live_server.url}/accounts/login?next=/")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill("meimei")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("details.post-filtered").count() == 0

    page.locator("details.menu summary").click()
    page.locator("#nav-keyword-filters").click()
    page.wait_for_url("**/settings/filters")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("#filter-keyword").fill("剧透")
    # Each choice is tall enough to tap.
    for choice in page.locator(".keyword-filter-form label.check").all():
        assert choice.bounding_box()["height"] >= 40, choice.inner_text()
    page.locator("#keyword-filter-add").click()
    page.locator("#keyword-filters .keyword", has_text="剧透").wait_for()
    # The box is emptied for the next word.
    page.wait_for_function("document.getElementById('filter-keyword').value === ''")
    assert KeywordFilter.objects.get(owner=reader).title == "剧透"

    page.goto(f"{live_server.url}/")
    fold = page.locator(f"#filtered-{spoiler.id}")
    assert fold.locator("summary").inner_text().strip() == "已按关键词「剧透」折叠 — 显示"
    assert not page.locator(f"#post-{spoiler.id}").is_visible()
    assert page.locator(f"#post-{calm.id}").is_visible()
    fold.locator("summary").click()
    page.locator(f"#post-{spoiler.id}").wait_for(state="visible")
    assert "凶手是管家" in page.locator(f"#post-{spoiler.id} .post-text").first.inner_text()
