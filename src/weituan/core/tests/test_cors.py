"""Browser clients of other sites (Elk, Phanpy) may call the APIs: CORS preflights are answered and API
answers are readable cross-origin, without credentials; the site's pages grant nothing."""

import json
from typing import Any

import pytest
from django.test import Client

from weituan.accounts.models import User
from weituan.core.cors import EXPOSED_HEADERS
from weituan.core.testing import CountingWSGI
from weituan.mastodon.api_statuses_fast import with_status_post_wsgi
from weituan.mastodon.tests.test_status_post_fast import bearer, wsgi_post
from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db

ORIGIN = "https://elk.zone"


def _preflight(path: str, method: str, headers: str = "authorization,content-type") -> Any:
    return Client().options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/api/v1/timelines/home", "GET", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("/api/v1/statuses", "POST", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("/api/v2/search", "GET", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("/oauth/token", "POST", "POST, OPTIONS"),
        ("/oauth/revoke", "POST", "POST, OPTIONS"),
        ("/.well-known/oauth-authorization-server", "GET", "GET, OPTIONS"),
    ],
)
def test_a_preflight_is_answered_for_any_origin_without_credentials(
    path: str, method: str, allowed: str
) -> None:
    response = _preflight(path, method)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Methods"] == allowed
    assert response["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert response["Access-Control-Max-Age"] == "7200"
    assert "Access-Control-Allow-Credentials" not in response
    assert response.content == b""


def test_api_answers_are_readable_cross_origin_with_their_paging_headers(
    shopper: User, merchant: User
) -> None:
    client = Client(**bearer(shopper))
    for _ in range(3):
        Client(**bearer(merchant)).post("/api/v1/statuses", {"status": "拼团"})
    page = client.get("/api/v1/timelines/public?limit=2", HTTP_ORIGIN=ORIGIN)
    assert page.status_code == 200
    assert page["Access-Control-Allow-Origin"] == "*"
    assert page["Access-Control-Expose-Headers"] == EXPOSED_HEADERS
    assert "Link" in EXPOSED_HEADERS.split(", ") and page["Link"]
    assert "Access-Control-Allow-Credentials" not in page
    # Errors too, so a client can read why.
    refused = Client().get("/api/v1/timelines/home", HTTP_ORIGIN=ORIGIN)
    assert (refused.status_code, refused["Access-Control-Allow-Origin"]) == (401, "*")
    # A request from the site itself (no Origin) gets no CORS headers.
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/timelines/public")


def test_the_sites_pages_grant_no_cross_origin_access() -> None:
    assert "Access-Control-Allow-Origin" not in Client().get("/", HTTP_ORIGIN=ORIGIN)
    preflight = _preflight("/accounts/login/", "POST")
    assert "Access-Control-Allow-Origin" not in preflight
    authorize = _preflight("/oauth/authorize", "POST")
    assert "Access-Control-Allow-Origin" not in authorize


def test_a_status_posted_in_front_of_django_carries_the_same_cors_headers(shopper: User) -> None:
    headers = {**bearer(shopper), "HTTP_ORIGIN": ORIGIN}
    app = CountingWSGI()
    status, fast_headers, _ = wsgi_post(with_status_post_wsgi(app), {"status": "跨站发帖"}, **headers)
    assert (status, app.calls) == (200, 0)
    assert fast_headers["Access-Control-Allow-Origin"] == "*"
    view = Client().post(
        "/api/v1/statuses", json.dumps({"status": "再发一条"}), content_type="application/json", **headers
    )
    assert {name: value for name, value in fast_headers.items() if name.startswith("Access-Control")} == {
        name: value for name, value in view.items() if name.startswith("Access-Control")
    }
    assert Post.objects.filter(author=shopper).count() == 2
