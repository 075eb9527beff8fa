"""Paths and methods the APIs do not have still answer in the API's error shape."""

import asyncio

import pytest
from django.test import AsyncClient, Client, RequestFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v2/no/such/thing", "/api/v1/deals//orders"])
def test_an_unknown_api_path_is_a_json_404(path: str) -> None:
    response = Client().post(path, {}, content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "Record not found", "code": "not_found"}


def test_a_method_an_endpoint_does_not_take_is_a_json_405() -> None:
    response = Client().delete("/api/v1/timelines/home")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_the_same_under_the_async_stack() -> None:
    response = asyncio.run(AsyncClient().delete("/api/v1/timelines/home"))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_a_missing_web_page_stays_a_page() -> None:
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_an_api_crash_is_a_json_500_and_a_page_crash_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from weituan.api import server_error
    from weituan.mastodon import api_instance

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(api_instance, "_statuses_configuration", broken)
    response = Client(raise_request_exception=False).get("/api/v1/instance")
    assert response.status_code == 500
    assert response.json() == {"error": "The server failed to answer this request", "code": "server_error"}
    page = server_error(RequestFactory().get("/notifications/"))
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_an_unknown_api_path_is_a_json_404_for_a_client_without_a_csrf_cookie(method: str) -> None:
    # A client's write to an endpoint Weituan does not offer (muting a conversation) carries a bearer
    # token and no CSRF cookie; it must read the API's 404, not Django's CSRF page.
    client = Client(enforce_csrf_checks=True, headers={"Authorization": "Bearer whatever"})
    response = getattr(client, method)("/api/v1/statuses/1/mute")
    assert response.status_code == 404
    assert response.json() == {"error": "Record not found", "code": "not_found"}


def test_a_session_write_without_its_csrf_token_is_refused_with_its_own_code(shopper) -> None:
    from weituan.microblog.models import Post

    client = Client(enforce_csrf_checks=True)
    client.force_login(shopper)
    response = client.post("/api/v1/statuses", {"status": "没有令牌"})
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert "X-CSRFToken" in response.json()["error"]
    assert not Post.objects.filter(author=shopper).exists()
    # With the token the cookie carries, the same session writes.
    client.get("/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    written = client.post("/api/v1/statuses", {"status": "带着令牌"}, headers={"X-CSRFToken": token})
    assert written.status_code == 200, written.content
    assert Post.objects.filter(author=shopper).count() == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/statuses", {"status": "没有令牌"}), ("/api/v1/deals/1/orders", {"quantity": 1})],
)
def test_a_write_with_neither_token_nor_session_is_a_401(path: str, body: dict[str, object]) -> None:
    # A client that lost its token (or never had one) sends no cookie either: there is no session for a
    # forged request to ride on, so the answer is "log in" (Mastodon's 401), not a CSRF refusal.
    from weituan.microblog.models import Post

    response = Client(enforce_csrf_checks=True).post(path, body, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert not Post.objects.exists()
