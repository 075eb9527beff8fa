"""Account pages: sign up, log in and out, password reset by real e-mail, profile, merchants."""

import io
import re
from email.header import decode_header, make_header
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from PIL import Image

from weituan.accounts import services
from weituan.accounts.models import AccessToken, MerchantApplication, User

PASSWORD = "correct horse battery"


def _logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _jpeg(size: tuple[int, int] = (900, 900)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (250, 80, 20)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.django_db
class TestSignupLoginLogout:
    def test_pages_render_in_both_languages(self, client: Client) -> None:
        for name in ("accounts:signup", "accounts:login", "accounts:password_reset"):
            page = client.get(reverse(name))
            assert page.status_code == 200
            assert 'name="viewport"' in page.content.decode()
        assert '<html lang="zh-hans">' in client.get(reverse("accounts:login")).content.decode()
        english = client.get(reverse("accounts:signup"), headers={"accept-language": "en"})
        assert '<html lang="en">' in english.content.decode()
        assert "Join Weituan" in english.content.decode()
        chinese = client.get(reverse("accounts:signup"), headers={"accept-language": "zh-CN"})
        assert "加入微团" in chinese.content.decode()

    def test_signup_logs_the_new_user_in(self, client: Client) -> None:
        response = client.post(
            reverse("accounts:signup"),
            {
                "username": "新用户",
                "display_name": "新人",
                "email": "new@example.test",
                "password1": "a long passphrase",
                "password2": "a long passphrase",
            },
        )
        assert response.status_code == 302
        assert response["Location"] == reverse("web:home")
        user = User.objects.get(username="新用户")
        assert (user.display_name, user.email) == ("新人", "new@example.test")
        assert int(client.session["_auth_user_id"]) == user.pk

    def test_signup_errors_are_shown_and_nothing_is_created(self, client: Client, shopper: User) -> None:
        response = client.post(
            reverse("accounts:signup"),
            {
                "username": "alice",
                "email": "other@example.test",
                "password1": "a long passphrase",
                "password2": "a long passphrase",
            },
        )
        assert response.status_code == 400
        assert "这个用户名已被占用，请换一个。" in response.content.decode()
        mismatch = client.post(
            reverse("accounts:signup"),
            {
                "username": "bob",
                "email": "b@example.test",
                "password1": "a long passphrase",
                "password2": "x",
            },
        )
        assert mismatch.status_code == 400
        assert User.objects.count() == 1
        assert "_auth_user_id" not in client.session

    def test_signup_refusals_are_in_the_readers_language_next_to_their_field(
        self, client: Client, shopper: User
    ) -> None:
        def refusal(username: str, email: str, language: str) -> str:
            response = client.post(
                reverse("accounts:signup"),
                {
                    "username": username,
                    "email": email,
                    "password1": "a long pass",
                    "password2": "a long pass",
                },
                headers={"accept-language": language},
            )
            assert response.status_code == 400
            body = response.content.decode()
            return (
                body[body.index('for="id_username"') : body.index('for="id_display_name"')]
                + (body[body.index('for="id_email"') : body.index('for="id_password1"')])
            )

        assert "这个用户名已被占用，请换一个。" in refusal("ALICE", "a2@example.test", "zh-CN")
        assert "This username is already taken. Please choose another." in refusal("alice", "a2@x.test", "en")
        assert "用户名为 2–30 个字母、数字、下划线或汉字，不能有空格。" in refusal(
            "a b", "a3@x.test", "zh-CN"
        )
        assert "这个用户名是保留的，请换一个。" in refusal("admin", "a4@x.test", "zh-CN")
        assert "这个邮箱已注册过账号。请直接登录，或重置密码。" in refusal(
            "newbie", "ALICE@example.test", "zh-CN"
        )
        assert User.objects.count() == 1

    def test_signup_says_every_problem_at_once(self, client: Client, shopper: User) -> None:
        """A name taken, an address already registered, a common password that is also typed differently
        the second time: all said on the first try, each beside its field, and nothing is made."""
        response = client.post(
            reverse("accounts:signup"),
            {
                "username": "Alice",
                "display_name": "新人",
                "email": "alice@example.test",
                "password1": "password",
                "password2": "passwort",
            },
            headers={"accept-language": "zh-CN"},
        )
        assert response.status_code == 400
        errors = response.context["form"].errors
        assert errors["username"] == ["这个用户名已被占用，请换一个。"]
        assert errors["email"] == ["这个邮箱已注册过账号。请直接登录，或重置密码。"]
        assert len(errors["password1"]) == 1 and "常见" in errors["password1"][0]
        assert errors["password2"] == ["两次输入的密码不一致。"]
        assert User.objects.count() == 1
        page = response.content.decode()
        assert 'value="Alice"' in page and 'value="alice@example.test"' in page  # what was typed stays

    def test_a_wrong_password_is_told_plainly(self, client: Client, shopper: User) -> None:
        wrong = client.post(reverse("accounts:login"), {"username": "alice", "password": "nope"})
        body = wrong.content.decode()
        assert "用户名、邮箱或密码不正确，请重试。" in body
        assert "username" not in body.split('<ul class="form-errors"')[1].split("</ul>")[0]
        english = client.post(
            reverse("accounts:login"),
            {"username": "alice", "password": "nope"},
            headers={"accept-language": "en"},
        )
        assert "The username, e-mail address or password is wrong." in english.content.decode()

    def test_login_by_username_or_email_then_logout(self, client: Client, shopper: User) -> None:
        wrong = client.post(reverse("accounts:login"), {"username": "alice", "password": "nope"})
        assert wrong.status_code == 200
        assert "_auth_user_id" not in client.session

        by_email = client.post(
            reverse("accounts:login"), {"username": "ALICE@example.test", "password": PASSWORD}
        )
        assert by_email.status_code == 302
        assert int(client.session["_auth_user_id"]) == shopper.pk

        # Logging out is POST only; a GET (a link, an <img>) leaves the session alone.
        assert client.get(reverse("accounts:logout")).status_code == 405
        assert "_auth_user_id" in client.session
        assert client.post(reverse("accounts:logout")).status_code == 302
        assert "_auth_user_id" not in client.session

        by_name = client.post(
            reverse("accounts:login") + "?next=/settings/profile",
            {"username": "alice", "password": PASSWORD, "next": "/settings/profile"},
        )
        assert by_name["Location"] == "/settings/profile"

    def test_a_newcomer_sent_to_log_in_signs_up_and_lands_where_they_were_going(self, client: Client) -> None:
        """Someone opening a friend's team link is sent to log in; having no account they follow the
        sign-up link, and a first try refused (the passwords differ) still brings them back to the team."""
        login_page = client.get(reverse("accounts:login") + "?next=/teams/7/").content.decode()
        card = login_page.split('class="card account-card"', 1)[1]  # past the header's own sign-up button
        signup_link = re.search(r'href="(/accounts/signup[^"]*)"', card)
        assert signup_link is not None
        assert signup_link[1] == "/accounts/signup?next=/teams/7/"

        form = {
            "username": "xinren",
            "email": "xinren@example.test",
            "password1": "a long passphrase",
            "password2": "another passphrase",
        }
        refused = client.post(signup_link[1], form)
        assert refused.status_code == 400
        assert not User.objects.filter(username="xinren").exists()
        page = refused.content.decode()
        assert '<input type="hidden" name="next" value="/teams/7/">' in page
        assert 'href="/accounts/login?next=/teams/7/"' in page

        # The form posts to its own address, without the query: the next stop rides in the form.
        made = client.post(
            reverse("accounts:signup"), {**form, "password2": "a long passphrase", "next": "/teams/7/"}
        )
        assert made.status_code == 302
        assert made["Location"] == "/teams/7/"

    def test_login_does_not_redirect_off_site(self, client: Client, shopper: User) -> None:
        response = client.post(
            reverse("accounts:login"),
            {"username": "alice", "password": PASSWORD, "next": "https://evil.test/"},
        )
        assert response.status_code == 302
        assert not response["Location"].startswith("https://evil.test")


@pytest.mark.django_db
def test_password_reset_by_real_email_end_to_end(
    client: Client, shopper: User, smtp_inbox: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        response = client.post(reverse("accounts:password_reset"), {"email": "alice@example.test"})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")

    message = smtp_inbox.wait(1)[0]
    assert message["To"] == "alice@example.test"
    body = message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")
    assert "@alice" in body
    link = re.search(r"https?://[^/\s]+(/accounts/reset/[^\s]+/)", body)
    assert link is not None
    path = link.group(1)

    # Django swaps the token for a session marker and redirects to a set-password URL.
    landing = client.get(path)
    assert landing.status_code == 302
    form_url = landing["Location"]
    done = client.post(
        form_url, {"new_password1": "brand new secret 9", "new_password2": "brand new secret 9"}
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("accounts:password_reset_complete")

    fresh = Client()
    assert (
        fresh.post(reverse("accounts:login"), {"username": "alice", "password": PASSWORD}).status_code == 200
    )
    logged = fresh.post(reverse("accounts:login"), {"username": "alice", "password": "brand new secret 9"})
    assert logged.status_code == 302
    assert int(fresh.session["_auth_user_id"]) == shopper.pk

    # The link works once.
    again = client.get(path, follow=True)
    assert "This link no longer works" in again.content.decode() or "链接" in again.content.decode()


def _reset_mail(smtp_inbox: Any) -> tuple[str, str]:
    """The subject and body of the one reset e-mail delivered."""
    message = smtp_inbox.wait(1)[0]
    subject = str(make_header(decode_header(message["Subject"])))
    return subject, message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")


@pytest.mark.django_db
def test_password_reset_mail_names_the_site_and_links_to_its_public_address(
    client: Client, shopper: User, smtp_inbox: Any, settings: Any, run_on_commit: Any
) -> None:
    settings.SITE_URL = "https://weituan.example.test"
    settings.SITE_NAME = "Weituan 微团"
    with run_on_commit():
        response = client.post(
            reverse("accounts:password_reset"),
            {"email": "alice@example.test"},
            HTTP_HOST="127.0.0.1",
            HTTP_ACCEPT_LANGUAGE="en",
        )
    assert response.status_code == 302

    subject, body = _reset_mail(smtp_inbox)
    assert subject == "Reset your password on Weituan 微团"
    links = re.findall(r"\S+/accounts/reset/\S+/", body)
    assert len(links) == 1
    assert links[0].startswith("https://weituan.example.test/accounts/reset/")
    assert "127.0.0.1" not in body


@pytest.mark.django_db
def test_password_reset_revokes_the_accounts_api_tokens(
    client: Client, shopper: User, outsider: User, smtp_inbox: Any, run_on_commit: Any
) -> None:
    from weituan.accounts.oauth import (
        OAuthError,
        authorization_code_exchange,
        authorization_code_issue,
        oauth_app_create,
    )
    from weituan.accounts.tokens import access_token_issue

    before_reset, _ = access_token_issue(user=shopper)
    someone_elses, _ = access_token_issue(user=outsider)
    # A code approved with the old password and not exchanged yet.
    app = oauth_app_create(name="旧手机", redirect_uris="urn:ietf:wg:oauth:2.0:oob", scopes="read")
    code = authorization_code_issue(
        application=app, user=shopper, redirect_uri="urn:ietf:wg:oauth:2.0:oob", scopes="read"
    )
    assert (
        Client()
        .get("/api/v1/accounts/verify_credentials", HTTP_AUTHORIZATION=f"Bearer {before_reset}")
        .status_code
        == 200
    )

    with run_on_commit():
        client.post(reverse("accounts:password_reset"), {"email": "alice@example.test"})
    # Asking for a reset changes nothing yet: anyone may ask.
    assert (
        Client()
        .get("/api/v1/accounts/verify_credentials", HTTP_AUTHORIZATION=f"Bearer {before_reset}")
        .status_code
        == 200
    )
    _, body = _reset_mail(smtp_inbox)
    path = re.search(r"https?://[^/\s]+(/accounts/reset/[^\s]+/)", body).group(1)  # type: ignore[union-attr]
    form_url = client.get(path)["Location"]
    done = client.post(
        form_url, {"new_password1": "brand new secret 9", "new_password2": "brand new secret 9"}
    )
    assert done.status_code == 302

    refused = Client().get("/api/v1/accounts/verify_credentials", HTTP_AUTHORIZATION=f"Bearer {before_reset}")
    assert refused.status_code == 401
    assert refused.json() == {"error": "The access token is invalid", "code": "invalid_token"}
    other = Client().get("/api/v1/accounts/verify_credentials", HTTP_AUTHORIZATION=f"Bearer {someone_elses}")
    assert other.status_code == 200
    assert AccessToken.objects.filter(user=shopper, revoked_at__isnull=True).count() == 0
    with pytest.raises(OAuthError) as spent:
        authorization_code_exchange(application=app, code=code, redirect_uri="urn:ietf:wg:oauth:2.0:oob")
    assert spent.value.code == "code_used"


@pytest.mark.django_db
def test_a_refused_new_password_revokes_nothing(
    client: Client, shopper: User, smtp_inbox: Any, run_on_commit: Any
) -> None:
    from weituan.accounts.tokens import access_token_issue

    raw, _ = access_token_issue(user=shopper)
    with run_on_commit():
        client.post(reverse("accounts:password_reset"), {"email": "alice@example.test"})
    _, body = _reset_mail(smtp_inbox)
    path = re.search(r"https?://[^/\s]+(/accounts/reset/[^\s]+/)", body).group(1)  # type: ignore[union-attr]
    form_url = client.get(path)["Location"]
    mismatch = client.post(
        form_url, {"new_password1": "brand new secret 9", "new_password2": "other secret 9"}
    )
    assert mismatch.status_code == 200
    shopper.refresh_from_db()
    assert shopper.check_password(PASSWORD)
    assert (
        Client().get("/api/v1/accounts/verify_credentials", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code
        == 200
    )


@pytest.mark.django_db
def test_password_reset_for_unknown_address_sends_nothing(
    client: Client, smtp_inbox: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.test"})
    assert response.status_code == 302
    assert smtp_inbox.messages == []


@pytest.mark.django_db
class TestProfilePage:
    def test_login_required(self, client: Client) -> None:
        response = client.get(reverse("accounts:profile"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))

    def test_edit_with_avatar_upload(self, shopper: User) -> None:
        client = _logged_in(shopper)
        response = client.post(
            reverse("accounts:profile"),
            {
                "display_name": "爱丽丝 Alice",
                "bio": "喜欢团购",
                "locale": "en",
                "avatar": SimpleUploadedFile("me.jpg", _jpeg(), content_type="image/jpeg"),
            },
        )
        assert response.status_code == 302
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.bio, shopper.locale) == ("爱丽丝 Alice", "喜欢团购", "en")
        with Image.open(shopper.avatar.path) as stored:
            assert (stored.format, stored.size) == ("JPEG", (400, 400))
        page = client.get(reverse("accounts:profile")).content.decode()
        assert shopper.avatar.url in page

    def test_bad_avatar_shows_an_error_and_changes_nothing(self, shopper: User) -> None:
        client = _logged_in(shopper)
        response = client.post(
            reverse("accounts:profile"),
            {
                "display_name": "Changed",
                "bio": "",
                "locale": "",
                "avatar": SimpleUploadedFile("x.png", b"nope"),
            },
        )
        assert response.status_code == 400
        body = response.content.decode()
        # Shown by the avatar field, in the reader's language.
        avatar_field = body[body.index('for="id_avatar"') : body.index('for="id_locale"')]
        assert "这个文件不是可读取的 JPEG、PNG、GIF 或 WebP 图片。" in avatar_field
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.avatar.name) == ("Alice 爱丽丝", "")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "help_text", "refusal"),
    [
        (
            "zh-hans",
            "JPEG、PNG、GIF 或 WebP 格式，最大 2.0\xa0KB。",
            "图片太大了：图片最大 2.0\xa0KB，且不超过 40 百万像素。",
        ),
        (
            "en",
            "JPEG, PNG, GIF or WebP, at most 2.0\xa0KB.",
            "That image is too large: a picture may be at most 2.0\xa0KB and 40 million pixels.",
        ),
    ],
    ids=["zh-hans", "en"],
)
def test_an_oversized_avatar_is_refused_naming_the_limits_and_changes_nothing(
    shopper: User, settings: Any, language: str, help_text: str, refusal: str
) -> None:
    settings.MEDIA_MAX_BYTES = 2048
    client = _logged_in(shopper)
    client.cookies["django_language"] = language
    page = client.get(reverse("accounts:profile")).content.decode()
    assert f'<small class="help">{help_text}</small>' in page

    big = _jpeg()
    assert len(big) > 2048
    response = client.post(
        reverse("accounts:profile"),
        {"display_name": "Changed", "bio": "", "locale": "", "avatar": SimpleUploadedFile("big.jpg", big)},
    )
    assert response.status_code == 400
    body = response.content.decode()
    avatar_field = body[body.index('for="id_avatar"') : body.index('for="id_locale"')]
    assert f'<small class="error" role="alert">{refusal}</small>' in avatar_field
    shopper.refresh_from_db()
    assert (shopper.display_name, shopper.avatar.name) == ("Alice 爱丽丝", "")


@pytest.mark.django_db
class TestMerchantPages:
    def test_apply_and_operator_verifies(self, shopper: User, operator: User) -> None:
        applicant = _logged_in(shopper)
        assert (
            applicant.post(
                reverse("accounts:merchant_apply"), {"shop_name": "爱丽丝烘焙", "description": "手工面包"}
            ).status_code
            == 302
        )
        application = MerchantApplication.objects.get(user=shopper)

        staff = _logged_in(operator)
        queue = staff.get(reverse("accounts:operator_merchants"))
        assert queue.status_code == 200
        assert "爱丽丝烘焙" in queue.content.decode()
        decided = staff.post(
            reverse("accounts:operator_merchant_decide"),
            {"application_id": application.pk, "decision": "approve"},
        )
        assert decided.status_code == 302
        shopper.refresh_from_db()
        assert shopper.is_verified_merchant and shopper.verified_by_id == operator.pk
        assert (
            "这个账号已经是认证商家。"
            not in applicant.get(reverse("accounts:merchant_apply")).content.decode()
        )

    def test_outsider_is_refused_and_nothing_changes(self, shopper: User, outsider: User) -> None:
        application = services.merchant_apply(user=shopper, shop_name="Shop")
        intruder = _logged_in(outsider)
        assert intruder.get(reverse("accounts:operator_merchants")).status_code == 403
        response = intruder.post(
            reverse("accounts:operator_merchant_decide"),
            {"application_id": application.pk, "decision": "approve"},
        )
        assert response.status_code == 403
        application.refresh_from_db()
        shopper.refresh_from_db()
        assert application.state == "pending"
        assert (shopper.is_merchant, shopper.verified_at) == (False, None)

    def test_operator_rejects_with_a_note(self, shopper: User, operator: User) -> None:
        application = services.merchant_apply(user=shopper, shop_name="Shop")
        _logged_in(operator).post(
            reverse("accounts:operator_merchant_decide"),
            {"application_id": application.pk, "decision": "reject", "note": "缺少营业执照"},
        )
        application.refresh_from_db()
        assert (application.state, application.decision_note) == ("rejected", "缺少营业执照")
        page = _logged_in(shopper).get(reverse("accounts:merchant_apply")).content.decode()
        assert "缺少营业执照" in page


@pytest.mark.django_db
def test_name_badge_tag(shopper: User, merchant: User) -> None:
    template = Template("{% load accounts_tags %}{% user_name_badge person %}")
    plain = template.render(Context({"person": shopper}))
    badged = template.render(Context({"person": merchant}))
    assert 'href="/@alice"' in plain and "Alice 爱丽丝" in plain and "badge-v" not in plain
    assert 'href="/@meituan_shop"' in badged and "美团小店" in badged and ">V</abbr>" in badged
    shopper.display_name = "<script>x</script>"
    assert "<script>x" not in template.render(Context({"person": shopper}))


@pytest.mark.django_db
def test_last_seen_middleware_marks_logged_in_visitors(shopper: User, outsider: User) -> None:
    _logged_in(shopper).get(reverse("accounts:profile"))
    Client().get(reverse("accounts:login"))
    shopper.refresh_from_db()
    outsider.refresh_from_db()
    assert shopper.last_seen_at is not None
    assert outsider.last_seen_at is None
