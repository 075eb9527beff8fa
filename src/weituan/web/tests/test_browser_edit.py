"""Editing a post in the browser on a phone: Edit opens the words in place, Save shows the new words with
the edited mark, without leaving the page."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Post
from weituan.microblog.services.posts import post_create

PASSWORD = "a long enough secret 42"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_post_is_edited_in_place(live_server: Any, phone_page: Any) -> None:
    author = make_user("tea_house", merchant=True, password=PASSWORD)
    post = post_create(author=author, text="明前龙井今晚八点开团")
    page = phone_page
    page.goto(f"{live_server.url}/accounts/login?next=/@tea_house")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill("tea_house")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/@tea_house")
    card = page.locator(f"#post-{post.id}")
    card.locator("button.action-edit").click()
    box = card.locator("[data-panel=edit] textarea")
    assert box.is_visible() and box.input_value() == "明前龙井今晚八点开团"
    box.fill("明前龙井今晚九点开团")
    card.locator("[data-panel=edit] button[type=submit]").click()
    page.locator(f"#post-{post.id} .post-edited").wait_for()
    assert "今晚九点" in page.locator(f"#post-{post.id} .post-text").first.inner_text()
    assert page.url.endswith("/@tea_house")
    assert Post.objects.get(id=post.id).text == "明前龙井今晚九点开团"
