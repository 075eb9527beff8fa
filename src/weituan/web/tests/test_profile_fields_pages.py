"""Profile fields and the default post visibility in the browser: the edit page, the profile page (the
fields escaped, links safe), the compose box's default choice, both languages, and a phone's width."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from weituan.accounts.models import User
from weituan.core.testing import make_user
from weituan.microblog.models import Post

PASSWORD = "a long enough secret 42"
EDIT = "/settings/profile"


def _logged_in(user: User, language: str = "") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language) if language else Client()
    client.force_login(user)
    return client


def _edit_form(**changes: str) -> dict[str, str]:
    form = {
        "display_name": "爱丽丝",
        "bio": "",
        "locale": "",
        "quote_policy": "public",
        "default_privacy": "public",
    }
    for index in range(4):
        form[f"field_name_{index}"] = ""
        form[f"field_value_{index}"] = ""
    form.update(changes)
    return form


@pytest.mark.django_db
def test_the_edit_page_offers_four_rows_and_the_default_visibility(shopper: User) -> None:
    shopper.profile_fields = [{"name": "城市", "value": "杭州"}]
    shopper.default_privacy = "private"
    shopper.save(update_fields=["profile_fields", "default_privacy"])
    assert reverse("accounts:profile") == EDIT
    body = _logged_in(shopper).get(EDIT).content.decode()
    assert "个人资料附加信息" in body and "谁可以看到我的新微博" in body
    assert 'name="field_name_0" value="城市"' in body and 'name="field_value_0" value="杭州"' in body
    for index in range(1, 4):
        assert f'name="field_name_{index}"' in body and f'name="field_value_{index}"' in body
    assert '<option value="private" selected>仅粉丝</option>' in body
    english = _logged_in(shopper, "en").get(EDIT).content.decode()
    assert "Profile fields" in english and "Who sees my new posts" in english


@pytest.mark.django_db
def test_saving_fields_and_showing_them_escaped_on_the_profile(shopper: User, client: Client) -> None:
    answer = _logged_in(shopper).post(
        EDIT,
        _edit_form(
            default_privacy="unlisted",
            field_name_0="<script>alert('name')</script>",
            field_value_0="<img src=x onerror=alert(1)> https://shop.example/a?b=1&c=2",
            field_name_2="营业时间",
            field_value_2="javascript:alert(3)",
        ),
    )
    assert (answer.status_code, answer["Location"]) == (302, EDIT)
    shopper.refresh_from_db()
    assert (shopper.display_name, shopper.default_privacy) == ("爱丽丝", "unlisted")
    assert shopper.profile_fields == [
        {
            "name": "<script>alert('name')</script>",
            "value": "<img src=x onerror=alert(1)> https://shop.example/a?b=1&c=2",
        },
        {"name": "营业时间", "value": "javascript:alert(3)"},
    ]
    page = client.get("/@alice").content.decode()
    fields = page[page.index('<dl class="profile-fields"') : page.index("</dl>")]
    assert "<script" not in fields and "<img" not in fields
    assert "<dt>&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;</dt>" in fields
    assert (
        "<dd>&lt;img src=x onerror=alert(1)&gt; "
        '<a href="https://shop.example/a?b=1&amp;c=2" rel="nofollow noopener noreferrer" target="_blank">'
        "https://shop.example/a?b=1&amp;c=2</a></dd>"
    ) in fields
    assert "<dt>营业时间</dt><dd>javascript:alert(3)</dd>" in fields  # not a link
    # A profile without fields shows no list.
    make_user("bob")
    assert 'class="profile-fields"' not in client.get("/@bob").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"field_value_1": "只有内容"}, "填写了内容的附加信息也需要填写标签。"),
        (
            {"field_name_1": "名", "field_value_1": "长" * 256},
            "确保该变量包含不超过 255 字符 (目前字符数 256)。",
        ),
        ({"default_privacy": "direct"}, "选择一个有效的选项"),
    ],
)
def test_a_refused_save_shows_why_and_changes_nothing(
    shopper: User, changes: dict[str, str], message: str
) -> None:
    answer = _logged_in(shopper).post(EDIT, _edit_form(field_name_0="城市", field_value_0="杭州", **changes))
    assert answer.status_code == 400
    assert message in answer.content.decode()
    shopper.refresh_from_db()
    assert (shopper.display_name, shopper.profile_fields, shopper.default_privacy) == (
        "Alice 爱丽丝",
        [],
        "public",
    )


@pytest.mark.django_db
def test_the_compose_box_starts_on_the_default_visibility(shopper: User) -> None:
    shopper.default_privacy = "private"
    shopper.default_language = "ja"
    shopper.save(update_fields=["default_privacy", "default_language"])
    client = _logged_in(shopper)
    home = client.get("/").content.decode()
    compose = home[home.index('id="compose"') : home.index("</form>", home.index('id="compose"'))]
    assert '<select name="visibility"' in compose
    assert '<option value="private" selected>仅粉丝</option>' in compose
    assert '<option value="public">公开</option>' in compose
    assert client.post(reverse("microblog:compose"), {"text": "默认"}).status_code == 302
    assert (
        client.post(reverse("microblog:compose"), {"text": "公开", "visibility": "public"}).status_code == 302
    )
    assert list(Post.objects.order_by("id").values_list("text", "visibility", "language")) == [
        ("默认", "private", "ja"),
        ("公开", "public", "ja"),
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_editing_fields_on_a_phone(live_server: Any, phone_page: Any) -> None:
    make_user("tea_house", password=PASSWORD)
    page = phone_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login?next={EDIT}")
    form = page.locator("form[action^='/accounts/login']")
    form.locator("[name=username]").fill("tea_house")
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**{EDIT}")
    assert page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]") == [390, 390]
    for name in ("field_name_0", "field_value_3", "default_privacy"):
        box = page.locator(f"[name={name}]").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 30
    page.fill("[name=field_name_0]", "网店")
    page.fill("[name=field_value_0]", "https://tea.example/" + "long-path-" * 20)
    page.select_option("[name=default_privacy]", "unlisted")
    page.locator("form[action='/settings/profile'] button[type=submit]").click()
    page.wait_for_url(f"**{EDIT}")
    page.goto(f"{live_server.url}/@tea_house")
    link = page.locator(".profile-fields dd a")
    assert link.get_attribute("href") == "https://tea.example/" + "long-path-" * 20
    assert page.locator(".profile-fields dt").inner_text() == "网店"
    # A long link wraps instead of pushing the page sideways.
    assert page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]") == [390, 390]
    assert problems == []
    user = User.objects.get(username="tea_house")
    assert (user.default_privacy, user.profile_fields[0]["name"]) == ("unlisted", "网店")
