"""OAuth 2: app registration, every grant, PKCE, revocation, and the JSON errors of each failure."""

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from weituan.accounts.models import AccessToken, OAuthApplication, User
from weituan.accounts.tokens import token_hash

PASSWORD = "correct horse battery"
REDIRECT = "https://client.example/callback"


def _register_app(client: Client, **extra: Any) -> dict[str, Any]:
    data = {
        "client_name": "Test client",
        "redirect_uris": REDIRECT,
        "scopes": "read write follow push",
        **extra,
    }
    response = client.post("/api/v1/apps", data)
    assert response.status_code == 200, response.content
    return response.json()


def _token(client: Client, **data: str) -> Any:
    return client.post("/oauth/token", data)


@pytest.mark.django_db
class TestApps:
    def test_create_app_has_mastodon_shape(self, client: Client) -> None:
        body = _register_app(client, website="https://client.example")
        assert set(body) >= {
            "id",
            "name",
            "website",
            "redirect_uri",
            "client_id",
            "client_secret",
            "vapid_key",
            "scopes",
        }
        assert (body["name"], body["website"], body["redirect_uri"]) == (
            "Test client",
            "https://client.example",
            REDIRECT,
        )
        assert body["scopes"] == ["read", "write", "follow", "push"]
        app = OAuthApplication.objects.get(client_id=body["client_id"])
        assert app.client_secret == body["client_secret"]

    def test_json_body_and_list_of_redirect_uris(self, client: Client) -> None:
        response = client.post(
            "/api/v1/apps",
            {"client_name": "JSON app", "redirect_uris": [REDIRECT, "urn:ietf:wg:oauth:2.0:oob"]},
            content_type="application/json",
        )
        assert response.status_code == 200
        assert response.json()["redirect_uris"] == [REDIRECT, "urn:ietf:wg:oauth:2.0:oob"]
        assert response.json()["scopes"] == ["read"]

    @pytest.mark.parametrize(
        "data",
        [
            {"client_name": "", "redirect_uris": REDIRECT},
            {"client_name": "x", "redirect_uris": "javascript:alert(1)"},
            {"client_name": "x", "redirect_uris": REDIRECT, "scopes": "read everything"},
        ],
    )
    def test_bad_registration(self, client: Client, data: dict[str, str]) -> None:
        response = client.post("/api/v1/apps", data)
        assert response.status_code in (400, 422)
        assert set(response.json()) >= {"error", "code"}
        assert OAuthApplication.objects.count() == 0

    def test_verify_app_credentials(self, client: Client) -> None:
        app = _register_app(client)
        token = _token(
            client,
            grant_type="client_credentials",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            scope="read",
        ).json()["access_token"]
        response = client.get("/api/v1/apps/verify_credentials", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json()["name"] == "Test client"
        assert "client_secret" not in response.json()


@pytest.mark.django_db
class TestPasswordGrant:
    def test_username_or_email(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        for login in ("alice", "alice@example.test"):
            response = _token(
                client,
                grant_type="password",
                client_id=app["client_id"],
                client_secret=app["client_secret"],
                username=login,
                password=PASSWORD,
                scope="read write",
            )
            assert response.status_code == 200
            body = response.json()
            assert (body["token_type"], body["scope"]) == ("Bearer", "read write")
            assert isinstance(body["created_at"], int)
            row = AccessToken.objects.get(token_hash=token_hash(body["access_token"]))
            assert row.application is not None
            assert (row.user_id, row.application.client_id) == (shopper.pk, app["client_id"])

    def test_wrong_password_and_unknown_user(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        for login, password in (("alice", "wrong"), ("ghost", PASSWORD)):
            response = _token(
                client,
                grant_type="password",
                client_id=app["client_id"],
                client_secret=app["client_secret"],
                username=login,
                password=password,
            )
            assert response.status_code == 400
            assert "WWW-Authenticate" not in response
            assert response.json() == {
                "error": "invalid_grant",
                "error_description": "The username or password is wrong",
                "code": "bad_credentials",
            }
        assert AccessToken.objects.count() == 0

    def test_bad_client_secret(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        response = _token(
            client,
            grant_type="password",
            client_id=app["client_id"],
            client_secret="guess",
            username="alice",
            password=PASSWORD,
        )
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer error="invalid_client"'
        assert (response.json()["error"], response.json()["code"]) == ("invalid_client", "invalid_client")
        assert AccessToken.objects.count() == 0

    def test_scope_beyond_the_app_is_refused(self, client: Client, shopper: User) -> None:
        app = _register_app(client, scopes="read")
        response = _token(
            client,
            grant_type="password",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            username="alice",
            password=PASSWORD,
            scope="read write",
        )
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"

    def test_basic_auth_and_unsupported_grant(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        response = client.post(
            "/oauth/token",
            {"grant_type": "password", "username": "alice", "password": PASSWORD},
            headers={"authorization": f"Basic {basic}"},
        )
        assert response.status_code == 200
        unsupported = client.post("/oauth/token", {"grant_type": "implicit"})
        assert unsupported.status_code == 400
        assert unsupported.json()["error"] == "unsupported_grant_type"


def _authorize(client: Client, app: dict[str, Any], **extra: str) -> Any:
    params = {
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "read write",
        "state": "xyz",
        **extra,
    }
    page = client.get("/oauth/authorize", params)
    assert page.status_code == 200
    assert "Test client" in page.content.decode()
    # The approve form may redirect to the client, and only there.
    assert "form-action 'self' https://client.example;" in page["Content-Security-Policy"]
    return client.post("/oauth/authorize", {**params, "decision": "approve"})


@pytest.mark.django_db
class TestAuthorizationCode:
    def test_redirect_flow_and_code_is_single_use(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        client.force_login(shopper)
        approved = _authorize(client, app)
        assert approved.status_code == 302
        target = urlsplit(approved["Location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == REDIRECT
        query = parse_qs(target.query)
        assert query["state"] == ["xyz"]
        code = query["code"][0]

        api = Client()
        exchange = {
            "grant_type": "authorization_code",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "code": code,
            "redirect_uri": REDIRECT,
        }
        first = _token(api, **exchange)
        assert first.status_code == 200
        assert first.json()["scope"] == "read write"

        reused = _token(api, **exchange)
        assert reused.status_code == 400
        assert (reused.json()["error"], reused.json()["code"]) == ("invalid_grant", "code_used")
        assert AccessToken.objects.filter(user=shopper).count() == 1

    def test_login_required_then_deny(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        anonymous = client.get("/oauth/authorize", {"client_id": app["client_id"], "redirect_uri": REDIRECT})
        assert anonymous.status_code == 302
        assert anonymous["Location"].startswith("/accounts/login?next=")

        client.force_login(shopper)
        denied = client.post(
            "/oauth/authorize",
            {"client_id": app["client_id"], "redirect_uri": REDIRECT, "state": "s1", "decision": "deny"},
        )
        assert denied.status_code == 302
        assert parse_qs(urlsplit(denied["Location"]).query) == {
            "error": ["access_denied"],
            "error_description": ["The user denied the request"],
            "state": ["s1"],
        }

    def test_unregistered_redirect_is_never_followed(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        client.force_login(shopper)
        response = client.get(
            "/oauth/authorize", {"client_id": app["client_id"], "redirect_uri": "https://evil.example/steal"}
        )
        assert response.status_code == 400
        assert "redirect_uri is not registered" in response.content.decode()

    @pytest.mark.parametrize(
        ("language", "unregistered", "unknown_app", "denied"),
        [
            (
                "zh-hans",
                "该应用要求把你带回一个它未登记的地址，因此没有向它提供任何信息。",
                "此应用未在本站注册。带你来的链接可能有误或已过期。",
                "你已拒绝该应用的访问，没有向它提供任何信息。",
            ),
            (
                "en",
                "The application asked to send you back to an address it did not register, so nothing was "
                "shared with it.",
                "This application is not registered here. The link that brought you may be wrong or out of "
                "date.",
                "You denied the application access. Nothing was shared with it.",
            ),
        ],
        ids=["zh-hans", "en"],
    )
    def test_the_error_page_speaks_the_readers_language(
        self, client: Client, shopper: User, language: str, unregistered: str, unknown_app: str, denied: str
    ) -> None:
        app = _register_app(client, redirect_uris=f"{REDIRECT}\nurn:ietf:wg:oauth:2.0:oob")
        client.force_login(shopper)
        client.cookies["django_language"] = language

        def page_text(response: Any) -> str:
            assert response.status_code == 400
            return " ".join(response.content.decode().split())

        wrong_redirect = client.get(
            "/oauth/authorize", {"client_id": app["client_id"], "redirect_uri": "https://evil.example/steal"}
        )
        text = page_text(wrong_redirect)
        assert f"<p>{unregistered}</p>" in text
        # What the client's developer needs stays there, with the stable code.
        assert (
            "redirect_uri is not registered for this application (<code>invalid_redirect_uri</code>)" in text
        )

        no_such_app = client.get("/oauth/authorize", {"client_id": "nope", "redirect_uri": REDIRECT})
        assert f"<p>{unknown_app}</p>" in page_text(no_such_app)

        oob = {"client_id": app["client_id"], "redirect_uri": "urn:ietf:wg:oauth:2.0:oob", "scope": "read"}
        refused = client.post("/oauth/authorize", {**oob, "decision": "deny"})
        assert f"<p>{denied}</p>" in page_text(refused)
        assert AccessToken.objects.count() == 0

    def test_out_of_band_shows_the_code(self, client: Client, shopper: User) -> None:
        app = _register_app(client, redirect_uris="urn:ietf:wg:oauth:2.0:oob")
        client.force_login(shopper)
        params = {
            "client_id": app["client_id"],
            "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
            "response_type": "code",
            "scope": "read",
        }
        page = client.post("/oauth/authorize", {**params, "decision": "approve"})
        assert page.status_code == 200
        code = page.context["code"]
        assert code in page.content.decode()
        token = _token(
            Client(),
            grant_type="authorization_code",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            code=code,
            redirect_uri="urn:ietf:wg:oauth:2.0:oob",
        )
        assert token.status_code == 200

    def test_pkce_s256(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        client.force_login(shopper)
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        approved = _authorize(client, app, code_challenge=challenge, code_challenge_method="S256")
        code = parse_qs(urlsplit(approved["Location"]).query)["code"][0]
        base = {
            "grant_type": "authorization_code",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "code": code,
            "redirect_uri": REDIRECT,
        }

        wrong = _token(Client(), **base, code_verifier="w" * 50)
        assert wrong.status_code == 400
        assert wrong.json()["code"] == "invalid_code_verifier"
        right = _token(Client(), **base, code_verifier=verifier)
        assert right.status_code == 200

    def test_code_of_another_app_is_invalid(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        other = _register_app(client)
        client.force_login(shopper)
        code = parse_qs(urlsplit(_authorize(client, app)["Location"]).query)["code"][0]
        response = _token(
            Client(),
            grant_type="authorization_code",
            client_id=other["client_id"],
            client_secret=other["client_secret"],
            code=code,
            redirect_uri=REDIRECT,
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_code"

    def test_every_grant_that_does_not_hold_is_400_invalid_grant_and_issues_nothing(
        self, client: Client, shopper: User, clock: Any
    ) -> None:
        """RFC 6749 §5.2 and Mastodon: a bad grant from a client that authenticated is 400; only a
        client that failed to authenticate is 401."""
        app = _register_app(client)
        client.force_login(shopper)

        def code() -> str:
            return parse_qs(urlsplit(_authorize(client, app)["Location"]).query)["code"][0]

        exchange = {
            "grant_type": "authorization_code",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": REDIRECT,
        }
        elsewhere = _token(Client(), **{**exchange, "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"}, code=code())
        unknown = _token(Client(), **exchange, code="not-a-code")
        late = code()
        clock.forward(11 * 60)
        expired = _token(Client(), **exchange, code=late)
        disabled_code = code()
        shopper.is_active = False
        shopper.save(update_fields=["is_active"])
        disabled = _token(Client(), **exchange, code=disabled_code)
        answers = [elsewhere, unknown, expired, disabled]
        assert [(response.status_code, response.json()) for response in answers] == [
            (
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "redirect_uri does not match the authorization request",
                    "code": "invalid_redirect_uri",
                },
            ),
            (
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The authorization code is invalid",
                    "code": "invalid_code",
                },
            ),
            (
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The authorization code has expired",
                    "code": "code_expired",
                },
            ),
            (
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "The account is disabled",
                    "code": "account_disabled",
                },
            ),
        ]
        assert all(response["Cache-Control"] == "no-store" for response in answers)
        assert not any(response.has_header("WWW-Authenticate") for response in answers)
        assert AccessToken.objects.count() == 0


@pytest.mark.django_db
class TestClientCredentialsAndRevoke:
    def test_app_token_has_no_user_and_cannot_act_as_one(self, client: Client) -> None:
        app = _register_app(client)
        body = _token(
            client,
            grant_type="client_credentials",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            scope="read write",
        ).json()
        row = AccessToken.objects.get(token_hash=token_hash(body["access_token"]))
        assert row.user is None
        response = client.get(
            "/api/v1/accounts/verify_credentials", headers={"authorization": f"Bearer {body['access_token']}"}
        )
        # The token is good but nobody's: Mastodon's 422, so a client does not take it for revoked.
        assert response.status_code == 422
        assert response.json() == {
            "error": "This method requires an authenticated user",
            "code": "user_required",
        }

    def test_revoked_token_is_refused(self, client: Client, shopper: User) -> None:
        app = _register_app(client)
        token = _token(
            client,
            grant_type="password",
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            username="alice",
            password=PASSWORD,
        ).json()
        bearer = {"authorization": f"Bearer {token['access_token']}"}
        assert client.get("/api/v1/accounts/verify_credentials", headers=bearer).status_code == 200

        # Another application cannot revoke it.
        other = _register_app(client)
        client.post(
            "/oauth/revoke",
            {
                "client_id": other["client_id"],
                "client_secret": other["client_secret"],
                "token": token["access_token"],
            },
        )
        assert client.get("/api/v1/accounts/verify_credentials", headers=bearer).status_code == 200

        revoked = client.post(
            "/oauth/revoke",
            {
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "token": token["access_token"],
            },
        )
        assert (revoked.status_code, revoked.json()) == (200, {})
        refused = client.get("/api/v1/accounts/verify_credentials", headers=bearer)
        assert refused.status_code == 401
        assert refused.json() == {"error": "The access token is invalid", "code": "invalid_token"}
        # RFC 6750: a 401 says how to authenticate, and what was wrong with the token sent.
        assert refused["WWW-Authenticate"] == 'Bearer realm="Weituan", error="invalid_token"'
        anonymous = Client().get("/api/v1/accounts/verify_credentials")
        assert (anonymous.status_code, anonymous["WWW-Authenticate"]) == (401, 'Bearer realm="Weituan"')

    def test_server_metadata(self, client: Client) -> None:
        body = client.get("/.well-known/oauth-authorization-server").json()
        assert body["token_endpoint"] == "http://testserver/oauth/token"
        assert body["grant_types_supported"] == ["authorization_code", "password", "client_credentials"]
        assert body["code_challenge_methods_supported"] == ["S256"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "asks", "read", "statuses", "follow"),
    [
        (
            "zh-hans",
            "它将能够：",
            "读取你账号中的全部内容：帖子、列表、关注、通知等",
            "发布和删除帖子",
            "关注、取消关注、拉黑和静音账号，并查看你关注、拉黑和静音了谁",
        ),
        (
            "en",
            "It will be able to:",
            "Read everything in your account: posts, lists, follows, notifications and more",
            "Publish and delete posts",
            "Follow, unfollow, block and mute accounts, and see whom you follow, block and mute",
        ),
    ],
    ids=["zh-hans", "en"],
)
def test_the_authorize_page_says_what_each_scope_lets_the_app_do(
    client: Client, shopper: User, language: str, asks: str, read: str, statuses: str, follow: str
) -> None:
    app = _register_app(client)
    client.force_login(shopper)
    client.cookies["django_language"] = language
    page = client.get(
        "/oauth/authorize",
        {"client_id": app["client_id"], "redirect_uri": REDIRECT, "scope": "read write:statuses follow"},
    )
    assert page.status_code == 200
    text = " ".join(page.content.decode().split())
    assert f"<p>{asks}</p>" in text
    items = [
        f'<li><span class="scope-description">{description}</span> <code class="muted small">{name}</code></li>'
        for name, description in (("read", read), ("write:statuses", statuses), ("follow", follow))
    ]
    assert f'<ul class="scopes">{"".join(items)}</ul>' in text
    # The form still asks for exactly those scopes.
    assert '<input type="hidden" name="scope" value="read write:statuses follow">' in text
