"""Mastodon account endpoints and the instance description, through the test client."""

import io
import json
import os
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import encode_multipart
from PIL import Image

from weituan.accounts.models import AccessToken, User
from weituan.accounts.tokens import token_hash
from weituan.core.testing import make_user
from weituan.microblog.models import Mention, Notification
from weituan.microblog.stats import AccountCounts, account_stats_bump

ACCOUNT_KEYS = {
    "id",
    "username",
    "acct",
    "display_name",
    "locked",
    "bot",
    "discoverable",
    "group",
    "created_at",
    "note",
    "url",
    "avatar",
    "avatar_static",
    "header",
    "header_static",
    "followers_count",
    "following_count",
    "statuses_count",
    "last_status_at",
    "emojis",
    "fields",
}


def _png(size: tuple[int, int] = (1200, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (0, 160, 90)).save(buffer, "PNG")
    return buffer.getvalue()


def _app_token(client: Client) -> str:
    app = client.post(
        "/api/v1/apps",
        {"client_name": "Reg", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write"},
    ).json()
    return client.post(
        "/oauth/token",
        {
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "scope": "read write",
        },
    ).json()["access_token"]


@pytest.mark.django_db
class TestInstance:
    def test_v1(self, client: Client, settings: Any, shopper: User) -> None:
        settings.POST_MAX_WEIGHTED_LENGTH = 300
        body = client.get("/api/v1/instance").json()
        assert body["version"] == "4.5.0 (compatible; Weituan 0.1.0)"
        assert body["configuration"]["statuses"]["max_characters"] == 300
        assert body["configuration"]["statuses"]["characters_reserved_per_url"] == 23
        assert body["configuration"]["media_attachments"]["image_size_limit"] == settings.MEDIA_MAX_BYTES
        assert body["stats"]["user_count"] == 1
        assert body["urls"]["streaming_api"] == "ws://testserver"
        assert body["languages"] == ["zh", "en"]

    def test_v2(self, client: Client) -> None:
        body = client.get("/api/v2/instance").json()
        assert body["version"].startswith("4.5.0 ")
        assert body["api_versions"] == {"mastodon": 7}
        assert body["registrations"]["enabled"] is True
        assert body["registrations"]["url"] == "http://testserver/accounts/signup"
        assert body["configuration"]["urls"]["streaming"] == "ws://testserver"
        assert body["thumbnail"]["url"].startswith("http://testserver/static/")


@pytest.mark.django_db
class TestAccountEntity:
    def test_lookup_and_get_by_id(self, client: Client, merchant: User) -> None:
        account_stats_bump(user_id=merchant.pk, followers=3, following=1, posts=2)
        merchant.bio = "好吃 <b>不贵</b>\n第二行"
        merchant.save(update_fields=["bio"])

        by_name = client.get("/api/v1/accounts/lookup", {"acct": "@meituan_shop"})
        assert by_name.status_code == 200
        body = by_name.json()
        assert set(body) >= ACCOUNT_KEYS
        assert (body["id"], body["username"], body["acct"], body["display_name"]) == (
            str(merchant.pk),
            "meituan_shop",
            "meituan_shop",
            "美团小店",
        )
        assert (body["followers_count"], body["following_count"], body["statuses_count"]) == (3, 1, 2)
        assert body["note"] == "<p>好吃 &lt;b&gt;不贵&lt;/b&gt;<br />第二行</p>"
        assert body["url"] == "http://testserver/@meituan_shop"
        assert body["avatar"] == "http://testserver/static/accounts/default-avatar.png"
        assert body["avatar_static"] == body["avatar"]
        assert body["created_at"].endswith("Z") and len(body["created_at"]) == 24
        assert (body["verified_merchant"], body["is_merchant"]) == (True, True)
        assert (body["emojis"], body["fields"], body["group"]) == ([], [], False)

        assert client.get(f"/api/v1/accounts/{merchant.pk}").json() == body

    def test_last_status_at_is_the_day_of_the_last_post(self, shopper: User) -> None:
        from weituan.mastodon.serializers_accounts import account_json

        counts = SimpleNamespace(
            followers=0, following=0, posts=1, last_post_at=datetime(2024, 5, 1, 9, tzinfo=UTC)
        )
        assert account_json(shopper, counts)["last_status_at"] == "2024-05-01"  # type: ignore[arg-type]
        assert account_json(shopper, AccountCounts())["last_status_at"] is None

    def test_unknown_accounts_are_404_json(self, client: Client) -> None:
        for path in ("/api/v1/accounts/987654", "/api/v1/accounts/lookup?acct=nobody"):
            response = client.get(path)
            assert response.status_code == 404
            assert response.json()["code"] == "account_not_found"

    def test_accounts_json_batches_counts(
        self, shopper: User, merchant: User, django_assert_num_queries: Any
    ) -> None:
        from weituan.mastodon.serializers_accounts import accounts_json

        account_stats_bump(user_id=shopper.pk, posts=5)
        with django_assert_num_queries(1):
            rows = accounts_json([merchant, shopper, merchant])
        assert [(row["username"], row["statuses_count"]) for row in rows] == [
            ("meituan_shop", 0),
            ("alice", 5),
            ("meituan_shop", 0),
        ]
        assert rows[1]["verified_merchant"] is False


@pytest.mark.django_db
class TestNote:
    """The bio as Mastodon's `note`: linkified as a status's content is; `source.note` as written."""

    def test_mentions_of_accounts_topics_and_links_are_linked_and_the_rest_escaped(
        self, api_as: Any, shopper: User
    ) -> None:
        xiaolongbao = make_user("xiaolongbao")
        written = "hi @XiaoLongBao @nobody_here #团购 #双十一# <b>不贵</b>\nhttps://shop.example/a\n\nmail@xiaolongbao"
        response = api_as(shopper).patch(
            "/api/v1/accounts/update_credentials", {"note": written}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["note"] == (
            '<p>hi <span class="h-card"><a href="http://testserver/@XiaoLongBao" class="u-url mention">'
            "@<span>XiaoLongBao</span></a></span> @nobody_here "
            '<a href="http://testserver/topics/%E5%9B%A2%E8%B4%AD" class="mention hashtag" rel="tag">#团购</a> '
            '<a href="http://testserver/topics/%E5%8F%8C%E5%8D%81%E4%B8%80" class="mention hashtag" rel="tag">'
            "#双十一#</a> &lt;b&gt;不贵&lt;/b&gt;<br />"
            '<a href="https://shop.example/a" rel="nofollow noopener noreferrer" target="_blank">'
            "https://shop.example/a</a></p><p>mail@xiaolongbao</p>"
        )
        assert body["source"]["note"] == written
        assert api_as(xiaolongbao).get(f"/api/v1/accounts/{shopper.pk}").json()["note"] == body["note"]
        # A bio names people without mentioning them: nobody is notified.
        assert not Notification.objects.exists()
        assert not Mention.objects.exists()

    def test_a_name_of_no_active_account_stays_text(self, client: Client, shopper: User) -> None:
        make_user("gone_shop", is_active=False)
        shopper.bio = "@gone_shop @alice"
        shopper.save(update_fields=["bio"])
        assert client.get(f"/api/v1/accounts/{shopper.pk}").json()["note"] == (
            '<p>@gone_shop <span class="h-card"><a href="http://testserver/@alice" class="u-url mention">'
            "@<span>alice</span></a></span></p>"
        )

    def test_accounts_json_reads_the_names_of_every_bio_in_one_query(
        self, shopper: User, merchant: User, outsider: User, django_assert_num_queries: Any
    ) -> None:
        from weituan.mastodon.serializers_accounts import accounts_json

        shopper.bio = "我的店 @meituan_shop"
        merchant.bio = "店主 @alice @charlie @nobody_here"
        with django_assert_num_queries(2):  # the counters, then the accounts the bios name
            rows = accounts_json([shopper, merchant, outsider])
        assert ['class="u-url mention"' in row["note"] for row in rows] == [True, True, False]
        assert [row["note"].count("h-card") for row in rows] == [1, 2, 0]


@pytest.mark.django_db
class TestCredentials:
    def test_verify_credentials_has_source(self, api_as: Any, shopper: User) -> None:
        shopper.bio = "raw <bio>"
        shopper.save(update_fields=["bio"])
        body = api_as(shopper).get("/api/v1/accounts/verify_credentials").json()
        assert body["username"] == "alice"
        assert body["source"]["note"] == "raw <bio>"
        assert body["source"]["privacy"] == "public"

    def test_update_credentials_multipart_patch(self, api_as: Any, shopper: User) -> None:
        client = api_as(shopper)
        payload = {
            "display_name": "新名字",
            "note": "团购达人",
            "locked": "1",
            "bot": "false",
            "source[language]": "en",
            "avatar": SimpleUploadedFile("a.png", _png(), content_type="image/png"),
            "header": SimpleUploadedFile("h.png", _png((3000, 1000)), content_type="image/png"),
        }
        response = client.patch(
            "/api/v1/accounts/update_credentials",
            encode_multipart("BoUnDaRy", payload),
            content_type="multipart/form-data; boundary=BoUnDaRy",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["display_name"], body["note"], body["locked"], body["bot"]) == (
            "新名字",
            "<p>团购达人</p>",
            True,
            False,
        )
        assert body["source"]["language"] == "en"
        assert body["avatar"].startswith("http://testserver/media/avatars/")
        assert body["header"].startswith("http://testserver/media/headers/")
        shopper.refresh_from_db()
        with Image.open(shopper.header.path) as header:
            assert header.size == (1500, 500)

    def test_update_credentials_form_and_json(self, api_as: Any, shopper: User) -> None:
        client = api_as(shopper)
        form = client.patch(
            "/api/v1/accounts/update_credentials",
            "display_name=Form+%E5%90%8D",
            content_type="application/x-www-form-urlencoded",
        )
        assert form.json()["display_name"] == "Form 名"
        as_json = client.patch(
            "/api/v1/accounts/update_credentials", {"note": "json"}, content_type="application/json"
        )
        assert as_json.json()["source"]["note"] == "json"

    def test_bad_avatar_is_422_and_changes_nothing(self, api_as: Any, shopper: User) -> None:
        response = api_as(shopper).patch(
            "/api/v1/accounts/update_credentials",
            encode_multipart(
                "B", {"display_name": "x", "avatar": SimpleUploadedFile("a.png", b"\x89PNG junk")}
            ),
            content_type="multipart/form-data; boundary=B",
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_image"
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.avatar.name) == ("Alice 爱丽丝", "")

    def test_a_bad_header_beside_a_good_avatar_is_named_and_neither_is_kept(
        self, api_as: Any, shopper: User, settings: Any
    ) -> None:
        media_before = sorted(p.name for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())
        response = api_as(shopper).patch(
            "/api/v1/accounts/update_credentials",
            encode_multipart(
                "B",
                {
                    "display_name": "x",
                    "avatar": SimpleUploadedFile("a.png", _png(), content_type="image/png"),
                    "header": SimpleUploadedFile("h.png", b"\x89PNG junk", content_type="image/png"),
                },
            ),
            content_type="multipart/form-data; boundary=B",
        )
        assert response.status_code == 422
        assert response.json() == {
            "error": "The file is not a readable JPEG, PNG, GIF or WebP image",
            "code": "invalid_image",
            "field": "header",
        }
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.avatar.name, shopper.header.name) == ("Alice 爱丽丝", "", "")
        assert sorted(p.name for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()) == media_before

    @pytest.mark.parametrize("name", ["avatar", "header"])
    @pytest.mark.parametrize("encoding", ["multipart", "form", "json"])
    def test_a_picture_sent_as_text_is_422_and_changes_nothing(
        self, api_as: Any, shopper: User, name: str, encoding: str
    ) -> None:
        fields = {"display_name": "x", "note": "changed", name: "/home/alice/photo.png"}
        body: bytes | str
        if encoding == "multipart":
            body, content_type = encode_multipart("B", fields), "multipart/form-data; boundary=B"
        elif encoding == "form":
            body, content_type = urlencode(fields), "application/x-www-form-urlencoded"
        else:
            body, content_type = json.dumps(fields), "application/json"
        response = api_as(shopper).patch(
            "/api/v1/accounts/update_credentials", body, content_type=content_type
        )
        assert response.status_code == 422
        assert response.json() == {
            "error": f"{name} must be sent as a file, in a multipart/form-data request",
            "code": "file_expected",
            "field": name,
        }
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.bio, shopper.avatar.name, shopper.header.name) == (
            "Alice 爱丽丝",
            "",
            "",
            "",
        )

    def test_a_null_picture_in_json_changes_nothing_and_is_no_error(self, api_as: Any, shopper: User) -> None:
        response = api_as(shopper).patch(
            "/api/v1/accounts/update_credentials",
            {"display_name": "新名字", "avatar": None},
            content_type="application/json",
        )
        assert response.status_code == 200
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.avatar.name) == ("新名字", "")

    def test_an_oversized_avatar_is_413_naming_the_field(
        self, api_as: Any, shopper: User, settings: Any
    ) -> None:
        settings.MEDIA_MAX_BYTES = 2048
        buffer = io.BytesIO()
        # Noise does not compress: a 64 x 64 PNG of it is about 12 kB.
        Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)).save(buffer, "PNG")
        big = buffer.getvalue()
        assert len(big) > 2048
        response = api_as(shopper).patch(
            "/api/v1/accounts/update_credentials",
            encode_multipart("B", {"avatar": SimpleUploadedFile("a.png", big, content_type="image/png")}),
            content_type="multipart/form-data; boundary=B",
        )
        assert response.status_code == 413
        assert response.json() == {
            "error": "The image is larger than 2048 bytes",
            "code": "image_too_large",
            "field": "avatar",
        }
        shopper.refresh_from_db()
        assert shopper.avatar.name == ""

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/api/v1/accounts/verify_credentials"),
            ("patch", "/api/v1/accounts/update_credentials"),
            ("get", "/api/v1/apps/verify_credentials"),
            ("post", "/api/v1/accounts"),
        ],
    )
    def test_invalid_token_is_401_json(self, client: Client, method: str, path: str) -> None:
        response = getattr(client, method)(path, headers={"authorization": "Bearer not-a-real-token"})
        assert response.status_code == 401
        assert response.json() == {"error": "The access token is invalid", "code": "invalid_token"}

    def test_missing_token_is_401_json(self, client: Client) -> None:
        response = client.get("/api/v1/accounts/verify_credentials")
        assert response.status_code == 401
        assert set(response.json()) == {"error", "code"}


@pytest.mark.django_db
class TestRegistration:
    def test_register_with_an_app_token(self, client: Client) -> None:
        token = _app_token(client)
        response = client.post(
            "/api/v1/accounts",
            {
                "username": "api_user",
                "email": "api@example.test",
                "password": "a long passphrase",
                "agreement": "1",
                "locale": "zh-CN",
            },
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["token_type"], body["scope"]) == ("Bearer", "read write")
        user = User.objects.get(username="api_user")
        assert user.locale == "zh-hans"
        row = AccessToken.objects.get(token_hash=token_hash(body["access_token"]))
        assert row.user_id == user.pk
        me = client.get(
            "/api/v1/accounts/verify_credentials", headers={"authorization": f"Bearer {body['access_token']}"}
        )
        assert me.json()["username"] == "api_user"

    @pytest.mark.parametrize(
        ("agreement", "as_json"),
        [(None, False), ("0", False), ("false", False), ("", False), (False, True), (None, True)],
    )
    def test_no_agreement_is_422_and_creates_nothing(
        self, client: Client, agreement: Any, as_json: bool
    ) -> None:
        token = _app_token(client)
        tokens_before = AccessToken.objects.count()
        data: dict[str, Any] = {
            "username": "api_user",
            "email": "api@example.test",
            "password": "a long passphrase",
        }
        if agreement is not None:
            data["agreement"] = agreement
        headers = {"authorization": f"Bearer {token}"}
        if as_json:
            response = client.post("/api/v1/accounts", data, content_type="application/json", headers=headers)
        else:
            response = client.post("/api/v1/accounts", data, headers=headers)
        assert response.status_code == 422
        assert response.json() == {
            "error": "You must agree to the server's rules to sign up",
            "code": "agreement_required",
            "details": {"agreement": [{"error": "ERR_ACCEPTED", "description": "must be accepted"}]},
        }
        assert not User.objects.filter(username="api_user").exists()
        assert AccessToken.objects.count() == tokens_before

    @pytest.mark.parametrize(
        ("agreement", "as_json"), [("true", False), ("1", False), ("on", False), (True, True)]
    )
    def test_agreement_in_any_boolean_form_registers(
        self, client: Client, agreement: Any, as_json: bool
    ) -> None:
        token = _app_token(client)
        data = {"username": "api_user", "email": "api@example.test", "password": "a long passphrase"}
        headers = {"authorization": f"Bearer {token}"}
        if as_json:
            response = client.post(
                "/api/v1/accounts",
                {**data, "agreement": agreement},
                content_type="application/json",
                headers=headers,
            )
        else:
            response = client.post("/api/v1/accounts", {**data, "agreement": agreement}, headers=headers)
        assert response.status_code == 200, response.content
        assert User.objects.get(username="api_user").email == "api@example.test"

    def test_taken_username_gives_mastodon_details(self, client: Client, shopper: User) -> None:
        token = _app_token(client)
        response = client.post(
            "/api/v1/accounts",
            {
                "username": "Alice",
                "email": "x@example.test",
                "password": "a long passphrase",
                "agreement": "1",
            },
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "username_taken"
        assert body["details"]["username"][0]["error"] == "ERR_TAKEN"
        assert User.objects.count() == 1

    def test_user_token_cannot_register(self, api_as: Any, shopper: User) -> None:
        # api_as tokens have no application; a user's app-bound token is refused too.
        response = api_as(shopper).post(
            "/api/v1/accounts", {"username": "x1", "email": "x@example.test", "password": "a long passphrase"}
        )
        assert response.status_code in (401, 403)
        assert User.objects.count() == 1

    def test_registration_is_rate_limited(self, client: Client, settings: Any) -> None:
        from weituan.mastodon import api_accounts

        token = _app_token(client)
        headers = {"authorization": f"Bearer {token}"}
        statuses = []
        for n in range(api_accounts.REGISTRATIONS_PER_ADDRESS + 1):
            statuses.append(
                client.post(
                    "/api/v1/accounts",
                    {
                        "username": f"user{n}",
                        "email": f"u{n}@example.test",
                        "password": "a long passphrase",
                        "agreement": "true",
                    },
                    headers=headers,
                ).status_code
            )
        assert statuses[:-1] == [200] * api_accounts.REGISTRATIONS_PER_ADDRESS
        assert statuses[-1] == 429
        assert User.objects.count() == api_accounts.REGISTRATIONS_PER_ADDRESS
