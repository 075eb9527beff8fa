"""Error pages (404, 400, 403, the CSRF refusal, 500) speak the reader's language, not Django's built-in English."""

import re

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

ZH = {"accept-language": "zh-CN,zh;q=0.9"}
EN = {"accept-language": "en-US,en;q=0.9"}


def _title(page: str) -> str:
    match = re.search(r"<title>(.*?)</title>", page, re.S)
    assert match, page[:300]
    return match.group(1).strip()


@pytest.mark.django_db
def test_a_missing_page_is_the_sites_not_found_page_in_the_readers_language(shopper):
    zh = Client(headers=ZH).get("/no-such-page")
    assert zh.status_code == 404
    page = zh.content.decode()
    assert _title(page) == "找不到页面 · 微团"
    assert '<html lang="zh-hans">' in page and "返回首页" in page
    assert "The requested resource was not found" not in page

    reader = Client(headers=EN)
    reader.force_login(shopper)
    en = reader.get("/deals/999999/")  # a view's own Http404 takes the same page
    assert en.status_code == 404
    page = en.content.decode()
    assert _title(page) == "Not found · Weituan"
    assert "Back to the home page" in page and 'id="logout"' in page


@pytest.mark.django_db
def test_a_request_django_refuses_as_bad_is_answered_in_the_readers_language():
    too_many_fields = "&".join(f"f{n}=1" for n in range(1100))  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    zh = Client(headers=ZH).get(f"/search?{too_many_fields}")
    assert zh.status_code == 400
    assert _title(zh.content.decode()) == "请求有误 · 微团"
    en = Client(headers=EN).get(f"/search?{too_many_fields}")
    assert _title(en.content.decode()) == "Bad request · Weituan"


@pytest.mark.django_db
def test_a_form_sent_without_its_csrf_token_says_what_to_do_in_the_readers_language():
    browser = Client(enforce_csrf_checks=True, headers=ZH)
    answer = browser.post("/accounts/login", {"username": "alice", "password": "x"})
    assert answer.status_code == 403
    page = answer.content.decode()
    assert _title(page) == "表单已过期 · 微团"
    assert "请刷新页面" in page and "CSRF verification failed" not in page


@pytest.mark.django_db
def test_a_tap_with_an_expired_form_token_says_so_in_the_flash_area(shopper, merchant):
    """The reader logged in again in another tab, which renews the token the open page sends: a tap on
    that page is told in its flash area to reload, not answered with a whole page swapped into the card."""
    from weituan.microblog.models import Like
    from weituan.microblog.services.posts import post_create

    offer = post_create(author=merchant, text="新品上市")
    reader = Client(enforce_csrf_checks=True, headers={**ZH, "HX-Request": "true"})
    reader.force_login(shopper)
    reader.cookies["csrftoken"] = "a" * 32
    answer = reader.post(f"/p/{offer.id}/like", headers={"X-CSRFToken": "b" * 32})
    assert answer.status_code == 403
    assert (answer["HX-Retarget"], answer["HX-Reswap"]) == ("#flash", "innerHTML")
    text = answer.content.decode()
    assert "<html" not in text and "请刷新页面" in text
    assert not Like.objects.exists()


@pytest.mark.parametrize(
    ("language", "title", "sentence"),
    [
        ("zh-hans", "出错了 · 微团", "服务器没能完成这个请求，请稍后再试。"),
        ("en", "Something went wrong · Weituan", "Try again in a moment."),
    ],
)
def test_the_server_error_page_renders_without_a_request_or_database(language, title, sentence):
    """Django renders 500.html when anything may be broken: it must need nothing but the template."""
    with translation.override(language):
        page = render_to_string("500.html")
    assert _title(page) == title
    assert sentence in page and f'<html lang="{language}">' in page


def test_the_not_allowed_page_is_translated():
    with translation.override("zh-hans"):
        page = render_to_string("403.html")
    assert _title(page) == "无权访问 · 微团"
    assert "你没有权限查看这个页面。" in page


@pytest.mark.django_db
def test_a_tap_after_the_session_ended_says_so_in_the_flash_area(shopper, merchant):
    """Logged out in another tab, the reader taps Like on their timeline: the page's flash area says they
    are logged out, with a way back to this page after logging in; no login page is swapped into the
    post card, and the tap changes nothing."""
    from weituan.microblog.models import Like
    from weituan.microblog.services.posts import post_create

    offer = post_create(author=merchant, text="新品上市")
    tab = {"HX-Request": "true", "HX-Current-URL": "http://testserver/@meituan_shop?max_id=9"}
    answer = Client(headers={**ZH, **tab}).post(f"/p/{offer.id}/like")
    assert answer.status_code == 401
    assert (answer["HX-Retarget"], answer["HX-Reswap"]) == ("#flash", "innerHTML")
    assert answer.content.decode().strip() == (
        '<p class="flash error" role="alert">你已退出登录。'
        ' <a href="/accounts/login?next=/%40meituan_shop%3Fmax_id%3D9">重新登录</a></p>'
    )
    assert not Like.objects.exists()

    # Without htmx (a plain form post, a link) the login page is still where the browser is sent.
    plain = Client(headers=ZH).post(f"/p/{offer.id}/like")
    assert plain.status_code == 302 and plain["Location"].startswith("/accounts/login?next=")
    # A signed-in tap is answered as ever.
    reader = Client(headers={**ZH, **tab})
    reader.force_login(shopper)
    assert reader.post(f"/p/{offer.id}/like").status_code == 200
    assert Like.objects.count() == 1
