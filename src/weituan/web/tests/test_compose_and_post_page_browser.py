"""In Chromium at phone size: a refused post keeps its draft, posting logs no script errors, the post
page keeps its comment list and counts in step (and leaves when its post is deleted), and a post's
pictures keep to their grid."""

import io
import re
from typing import Any

import pytest
from PIL import Image

from weituan.core.testing import make_user
from weituan.microblog.models import Post, PostKind
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

PASSWORD = "a long enough secret 42"


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/accounts/login")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill(username)
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(base_url + "/")


def _script_errors(page) -> list[str]:
    """Every error the page's scripts log (htmx logs a failed swap with console.error)."""
    errors: list[str] = []

    def logged(message) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", logged)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _not_an_image(tmp_path) -> str:
    path = tmp_path / "photo.png"
    path.write_bytes(b"this is not a picture" * 10)
    return str(path)


def _png(tmp_path) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 40)).save(buffer, format="PNG")
    path = tmp_path / "red.png"
    path.write_bytes(buffer.getvalue())
    return str(path)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_refused_post_keeps_its_draft_and_posting_logs_no_errors(live_server, phone_page, tmp_path):
    from playwright.sync_api import expect

    make_user("xiaoming", display_name="小明", password=PASSWORD)
    page = phone_page
    errors = _script_errors(page)
    _log_in(page, live_server.url, "xiaoming")
    box = page.locator("#compose-text")
    expect(page.locator("#timeline-empty")).to_be_visible()

    # A file that is not an image is refused; the words written stay in the box.
    box.fill("周末去西湖 #旅行#")
    page.locator("#compose input[name=images]").set_input_files(_not_an_image(tmp_path))
    page.locator("#compose-submit").click()
    expect(page.locator("#flash")).to_contain_text("这个文件不是可用的图片")
    expect(box).to_have_value("周末去西湖 #旅行#")
    assert not Post.objects.exists()

    # With a real picture it posts; the box empties and the empty timeline's note goes.
    page.locator("#compose input[name=images]").set_input_files(_png(tmp_path))
    page.locator("#compose-submit").click()
    expect(page.locator("#flash")).to_contain_text("发布成功")
    expect(box).to_have_value("")
    expect(page.locator("#timeline .post")).to_have_count(1)
    expect(page.locator("#timeline-empty")).to_be_hidden()

    # Posting again onto a timeline that is not empty.
    box.fill("第二条")
    page.locator("#compose-submit").click()
    expect(page.locator("#timeline .post")).to_have_count(2)

    # Too long for the server (the button's own check is bypassed, as a stale page would): kept too.
    box.fill("好" * 141)
    page.evaluate("document.querySelector('#compose-submit').disabled = false")
    page.locator("#compose-submit").click()
    expect(page.locator("#flash")).to_contain_text("内容太长了")
    expect(box).to_have_value("好" * 141)
    assert Post.objects.count() == 2
    # The refusals answer 422, which the browser reports as a failed load; nothing else is logged.
    assert [error for error in errors if "status of 422" not in error] == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_post_page_keeps_comments_and_counts_in_step(live_server, phone_page):
    from playwright.sync_api import expect

    reader = make_user("xiaoming", display_name="小明", password=PASSWORD)
    author = make_user("tea_house", display_name="春风茶庄", password=PASSWORD)
    follow_create(follower=reader, followee_id=author.pk)
    offer = post_create(author=author, text="明前龙井新茶上市")
    page = phone_page
    errors = _script_errors(page)
    _log_in(page, live_server.url, "xiaoming")
    page.goto(f"{live_server.url}/p/{offer.id}")
    card = page.locator(f"#post-{offer.id}")

    # The comment box under the post: the list, the heading's count and the card's count agree.
    page.locator("#comments-section textarea").fill("多少钱一斤？")
    page.locator("#comment-submit").click()
    expect(page.locator("#flash")).to_contain_text("评论成功")
    expect(page.locator("#comments li.comment")).to_have_count(1)
    expect(page.locator("#comments-count")).to_have_text("1")
    expect(card.locator(".action-comment")).to_have_text(re.compile(r"评论\s*1"))

    # The card's own comment box, on the same page, adds to the same list.
    card.locator(".action-comment").click()
    card.locator("[data-panel=comment] textarea").fill("包邮吗")
    card.locator("[data-panel=comment] button[type=submit]").click()
    expect(page.locator("#comments li.comment").first).to_contain_text("包邮吗")
    expect(page.locator("#comments-count")).to_have_text("2")
    expect(card.locator(".action-comment")).to_have_text(re.compile(r"评论\s*2"))
    assert Post.objects.filter(parent=offer, kind=PostKind.COMMENT).count() == 2
    assert errors == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_post_deleted_on_its_own_page_goes_home(live_server, phone_page):
    from playwright.sync_api import expect

    author = make_user("tea_house", display_name="春风茶庄", password=PASSWORD)
    offer = post_create(author=author, text="发错了")
    page = phone_page
    _log_in(page, live_server.url, "tea_house")
    page.goto(f"{live_server.url}/p/{offer.id}")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f"#post-{offer.id} .action-delete").click()
    page.wait_for_url(live_server.url + "/")
    expect(page.locator("#messages")).to_contain_text("已删除")
    offer.refresh_from_db()
    assert offer.deleted_at is not None


def _picture(name: str, size: tuple[int, int]) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format="JPEG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_post_of_four_pictures_shows_them_as_squares_on_a_phone(live_server, phone_page):
    """Pictures of a post of several are squares in a grid, whatever their own shape; a post of four
    tall photos does not run several screens down."""
    author = make_user("tea_house", display_name="春风茶庄", password=PASSWORD)
    sizes = [(600, 1200), (1200, 600), (800, 800), (600, 1200)]
    media = [media_upload(owner=author, upload=_picture(f"{n}.jpg", size)).id for n, size in enumerate(sizes)]
    offer = post_create(author=author, text="新茶上市，店里四个角落", media_ids=media)
    page = phone_page
    page.goto(f"{live_server.url}/p/{offer.id}")
    pictures = page.locator(f"#post-{offer.id} .post-media img")
    pictures.first.wait_for()
    boxes = [pictures.nth(n).bounding_box() for n in range(4)]
    assert all(box is not None for box in boxes)
    shapes = [(round(box["width"]), round(box["height"])) for box in boxes if box]
    side = shapes[0][0]
    assert 150 < side < 200  # two a row across a phone's card
    assert shapes == [(side, side)] * 4


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_long_name_does_not_squeeze_its_avatar(live_server, phone_page):
    """A display name that fills its line wraps beside the avatar; the avatar stays round."""
    name = "超长昵称的小店超长昵称的小店超长昵称的小店超长昵称 Wolfeschlegelsteinhausen"
    author = make_user("tea_house", display_name=name, password=PASSWORD)
    offer = post_create(author=author, text="开业大吉")
    page = phone_page
    page.goto(f"{live_server.url}/p/{offer.id}")
    avatar = page.locator(f"#post-{offer.id} .post-head img.avatar")
    avatar.wait_for()
    box = avatar.bounding_box()
    assert box is not None
    assert (round(box["width"]), round(box["height"])) == (40, 40)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_tap_the_server_fails_or_never_gets_is_told_and_the_draft_stays(live_server, phone_page):
    """A server failure (5xx, which the page does not swap in) or a lost connection: the flash area says
    so in the page's language, instead of nothing happening, and the words written stay in the box."""
    from playwright.sync_api import expect

    make_user("xiaoming", display_name="小明", password=PASSWORD)
    page = phone_page
    _log_in(page, live_server.url, "xiaoming")
    page.wait_for_function("() => window.htmx !== undefined")
    box = page.locator("#compose-text")
    box.fill("西湖边的晚霞 #旅行#")

    page.route("**/compose", lambda route: route.fulfill(status=500, body="<h1>Server Error</h1>"))
    page.locator("#compose-submit").click()
    expect(page.locator("#flash")).to_have_text("服务器没能完成这个请求，请稍后再试。")
    expect(box).to_have_value("西湖边的晚霞 #旅行#")

    page.unroute("**/compose")
    page.route("**/compose", lambda route: route.abort("internetdisconnected"))
    page.locator("#compose-submit").click()
    expect(page.locator("#flash")).to_have_text("连接不上微团，请检查网络后重试。")
    expect(box).to_have_value("西湖边的晚霞 #旅行#")
    assert not Post.objects.exists()
