"""Editing a post in the browser on a phone: Edit opens the words and images in place, Save shows the new
words and images with the edited mark, without leaving the page."""

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.core.testing import make_user
from weituan.microblog.models import MediaAttachment, Post
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import post_create

PASSWORD = "a long enough secret 42"


def _logged_in(page: Any, live_server: Any, path: str) -> Any:
    """`page` with tea_house logged in through the login form, brought on to `path`."""
    page.goto(f"{live_server.url}/accounts/login?next={path}")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill("tea_house")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**{path}")
    return page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_post_is_edited_in_place(live_server: Any, phone_page: Any) -> None:
    author = make_user("tea_house", merchant=True, password=PASSWORD)
    post = post_create(author=author, text="明前龙井今晚八点开团")
    page = _logged_in(phone_page, live_server, "/@tea_house")
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


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 90), (shade, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_posts_images_are_edited_and_the_post_page_shows_them(live_server: Any, phone_page: Any) -> None:
    author = make_user("tea_house", merchant=True, password=PASSWORD)
    first, second = (
        media_upload(owner=author, upload=SimpleUploadedFile(f"{shade}.png", _png(shade), "image/png")).id
        for shade in (10, 90)
    )
    post = post_create(author=author, text="龙井茶礼盒", media_ids=[first, second])
    page = _logged_in(phone_page, live_server, f"/p/{post.id}")
    card = page.locator(f"#post-{post.id}")
    assert card.locator(".post-media img").count() == 2
    card.locator("button.action-edit").click()
    panel = card.locator("[data-panel=edit]")
    panel.locator(f"input[name=remove_media][value='{first}']").check()
    panel.locator("input[type=file][name=images]").set_input_files(
        {"name": "new.png", "mimeType": "image/png", "buffer": _png(200)}
    )
    panel.locator("button[type=submit]").click()
    page.locator(f"#post-{post.id} .post-edited").wait_for()

    added = MediaAttachment.objects.get(post_id=post.id, position=1)
    assert list(
        MediaAttachment.objects.filter(post_id=post.id).order_by("position").values_list("id", flat=True)
    ) == [
        second,
        added.id,
    ]
    assert (added.width, added.height) == (120, 90)
    shown_urls = [MediaAttachment.objects.get(id=media_id).thumbnail.url for media_id in (second, added.id)]
    # The card drawn again, and the post page loaded afresh, show the images the post now carries.
    for _ in range(2):
        images = page.locator(f"#post-{post.id} .post-media img")
        assert [images.nth(index).get_attribute("src") for index in range(images.count())] == shown_urls
        page.reload()
    assert page.url.endswith(f"/p/{post.id}")
