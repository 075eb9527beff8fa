"""A NUL character (U+0000) anywhere a request sends text is refused before anything is read or written:
the API with 422 `invalid_characters`, OAuth in its own shape, pages with a translated 400 page; the
front paths hand such requests to Django and answer exactly as it does. The same requests without the
NUL are accepted, so each refusal is the NUL's."""

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from asgiref.testing import ApplicationCommunicator
from django.apps import apps
from django.core import signals
from django.core.asgi import get_asgi_application
from django.db import close_old_connections
from django.test import Client, RequestFactory
from django.utils import timezone
from PIL import Image

from weituan.accounts.models import User
from weituan.accounts.tokens import access_token_issue
from weituan.core.request_text import query_holds_nul, raw_may_hold_nul
from weituan.core.testing import CountingWSGI
from weituan.deals.api_orders_fast import with_order_checkout_wsgi
from weituan.deals.models import Deal
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.mastodon.api_statuses_fast import with_status_post_wsgi
from weituan.mastodon.api_timelines_fast import with_home_timeline_wsgi
from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db

NUL = "\x00"


def _png() -> bytes:
    """A real image: its bytes hold NULs, which are not text and must pass."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, format="PNG")
    assert b"\x00" in out.getvalue()
    return out.getvalue()


@dataclass
class World:
    shopper: User
    merchant: User
    shopper_token: str
    merchant_token: str
    deal: Deal
    web: Client

    def api(self, user: str = "shopper", **headers: Any) -> Client:
        token = self.shopper_token if user == "shopper" else self.merchant_token
        return Client(HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


@pytest.fixture
def world(shopper: User, merchant: User) -> World:
    shopper_token, _ = access_token_issue(user=shopper, scopes="read write follow push")
    merchant_token, _ = access_token_issue(user=merchant, scopes="read write follow push")
    wallet_top_up(user=shopper, amount=100_000)
    web = Client()
    web.force_login(shopper)
    return World(shopper, merchant, shopper_token, merchant_token, live_deal(merchant), web)


def _project_rows() -> dict[str, Any]:
    """Every table of the project counted, and the rows a refused write would change."""
    counts = {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model.__module__.startswith("weituan.") or model._meta.app_label in ("sessions", "django_tasks_db")
    }
    users = list(User.objects.order_by("pk").values())
    deals = list(Deal.objects.order_by("pk").values())
    return {"counts": counts, "users": users, "deals": deals}


# Each case sends `text` where a person's words go; with a NUL in it the request must be refused.
Case = Callable[[World, str], Any]


def _deal_body(text: str) -> dict[str, Any]:
    now = timezone.now()
    return {
        "title": f"火锅{text}",
        "list_price": 20000,
        "deal_price": 9900,
        "max_quantity": 10,
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
    }


API_CASES: dict[str, Case] = {
    "status, JSON": lambda w, t: w.api().post(
        "/api/v1/statuses", {"status": f"拼团{t}"}, content_type="application/json"
    ),
    "status, form": lambda w, t: w.api().post(
        "/api/v1/statuses",
        urlencode({"status": f"拼团{t}"}),
        content_type="application/x-www-form-urlencoded",
    ),
    "status, Idempotency-Key": lambda w, t: w.api(HTTP_IDEMPOTENCY_KEY=f"key{t}").post(
        "/api/v1/statuses", {"status": "拼团"}, content_type="application/json"
    ),
    "profile, multipart PATCH": lambda w, t: w.api().patch(
        "/api/v1/accounts/update_credentials",
        _multipart({"display_name": f"Alice{t}"}),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    ),
    "profile field, JSON key": lambda w, t: w.api().patch(
        "/api/v1/accounts/update_credentials",
        {"note": "hi", "source": {f"privacy{t}": "public"}},
        content_type="application/json",
    ),
    "deal title, JSON": lambda w, t: w.api("merchant").post(
        "/api/v1/deals", _deal_body(t), content_type="application/json"
    ),
    "app name, form": lambda w, t: Client().post(
        "/api/v1/apps",
        urlencode({"client_name": f"客户端{t}", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}),
        content_type="application/x-www-form-urlencoded",
    ),
    "image description, multipart": lambda w, t: w.api().post(
        "/api/v2/media", {"file": _upload(), "description": f"图{t}"}
    ),
    "account lookup, query": lambda w, t: w.api().get(f"/api/v1/accounts/lookup?acct={quote('alice' + t)}"),
    "search, query": lambda w, t: w.api().get(f"/api/v2/search?q={quote('火锅' + t)}"),
    "tag timeline, path": lambda w, t: w.api().get(f"/api/v1/timelines/tag/{quote('拼团' + t)}"),
    # A quoted cookie value spells a NUL as an escape, which the cookie's parsing makes one.
    "session cookie, escaped": lambda w, t: Client().get(
        "/api/v1/instance", HTTP_COOKIE='sessionid="abc' + ("\\000" if t else "") + '"'
    ),
}


def _upload() -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("photo.png", _png(), content_type="image/png")


BOUNDARY = "BoUnDaRy"


def _multipart(fields: dict[str, str]) -> bytes:
    from django.test.client import encode_multipart

    return encode_multipart(BOUNDARY, fields)


@pytest.mark.parametrize("name", list(API_CASES))
def test_the_api_refuses_a_nul_with_its_code_and_writes_nothing(world: World, name: str) -> None:
    case = API_CASES[name]
    before = _project_rows()
    response = case(world, NUL)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["code"] == "invalid_characters"
    assert "NUL character (U+0000)" in body["error"]
    assert _project_rows() == before

    clean = case(world, "")  # the same request without the NUL is taken
    assert clean.status_code in (200, 201, 202), clean.content


def test_the_oauth_token_endpoint_refuses_in_its_own_shape(world: World) -> None:
    before = _project_rows()
    response = Client().post(
        "/oauth/token",
        urlencode({"grant_type": "password", "username": f"alice{NUL}", "password": "x"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["code"] == "invalid_characters"
    assert "NUL character" in body["error_description"]
    assert response["Cache-Control"] == "no-store"
    assert _project_rows() == before


WEB_CASES: dict[str, Case] = {
    "compose, multipart with an image": lambda w, t: w.web.post(
        "/compose", {"text": f"拼团{t}", "visibility": "public", "media": _upload()}
    ),
    "profile, form": lambda w, t: w.web.post(
        "/settings/profile", {"display_name": f"Alice{t}", "bio": "", "default_privacy": "public"}
    ),
    "search, query": lambda w, t: w.web.get(f"/search?q={quote('火锅' + t)}"),
    "topic, path": lambda w, t: w.web.get(f"/topics/{quote('拼团' + t)}"),
    "profile page, path": lambda w, t: w.web.get(f"/@{quote('alice' + t)}"),
}


@pytest.mark.parametrize("name", list(WEB_CASES))
def test_pages_refuse_a_nul_with_a_translated_page_and_write_nothing(world: World, name: str) -> None:
    case = WEB_CASES[name]
    before = _project_rows()
    response = case(world, NUL)
    assert response.status_code == 400
    page = response.content.decode()
    assert "无法使用的字符" in page, page  # the site's language, zh-hans
    assert 'class="top-nav"' in page  # the site's page, with its header
    assert response.has_header("Content-Security-Policy")
    assert response["X-Frame-Options"] == "DENY"
    assert _project_rows() == before

    clean = case(world, "")
    assert clean.status_code in (200, 302), clean.content


def test_the_page_speaks_english_to_an_english_reader(world: World) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/search?q=a{quote(NUL)}")
    assert response.status_code == 400
    assert "a character that cannot be used (a NUL, U+0000)" in response.content.decode()


def test_htmx_gets_the_message_in_the_flash_area(world: World) -> None:
    response = world.web.post("/compose", {"text": f"x{NUL}"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#flash"
    assert 'class="flash error"' in response.content.decode()


# --- the front paths: a NUL goes to Django, which answers as it answers without them ---------------


def _call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    started: list[Any] = []
    # As Django's test client does: the test's transaction must outlive the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        environ = {**environ, "wsgi.input": io.BytesIO(environ["wsgi.input"].read())}
        body = b"".join(app(environ, lambda status, pairs: started.extend([status, pairs])))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started[0], list(started[1]), body


def _environ(method: str, path: str, body: bytes = b"", content_type: str = "", **headers: Any) -> Any:
    factory = RequestFactory()
    if method == "GET":
        return factory.get(path, **headers).environ
    return factory.post(path, data=body, content_type=content_type, **headers).environ


FRONT_CASES: dict[str, tuple[Callable[[Any], Any], Callable[[World, str], Any]]] = {
    "status, JSON escape": (
        with_status_post_wsgi,
        lambda w, t: _environ(
            "POST",
            "/api/v1/statuses",
            json.dumps({"status": f"拼团{t}"}).encode(),
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}",
        ),
    ),
    "status, form": (
        with_status_post_wsgi,
        lambda w, t: _environ(
            "POST",
            "/api/v1/statuses",
            urlencode({"status": f"拼团{t}"}).encode(),
            "application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}",
        ),
    ),
    "status, query string": (
        with_status_post_wsgi,
        lambda w, t: _environ(
            "POST",
            f"/api/v1/statuses?{urlencode({'visibility': 'public' + t})}",
            json.dumps({"status": "拼团"}).encode(),
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}",
        ),
    ),
    "status, Idempotency-Key": (
        with_status_post_wsgi,
        lambda w, t: _environ(
            "POST",
            "/api/v1/statuses",
            json.dumps({"status": "拼团"}).encode(),
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}",
            HTTP_IDEMPOTENCY_KEY=f"k{t}",
        ),
    ),
    "order, JSON key": (
        with_order_checkout_wsgi,
        lambda w, t: _environ(
            "POST",
            f"/api/v1/deals/{w.deal.id}/orders",
            json.dumps({"quantity": 1, f"note{t}": "x"}).encode(),
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}",
        ),
    ),
    "home timeline, query string": (
        with_home_timeline_wsgi,
        lambda w, t: _environ(
            "GET",
            f"/api/v1/timelines/home?{urlencode({'limit': '5', 'local': 'x' + t})}",
            HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}",
        ),
    ),
    "home timeline, bearer token": (
        with_home_timeline_wsgi,
        lambda w, t: _environ(
            "GET", "/api/v1/timelines/home", HTTP_AUTHORIZATION=f"Bearer {w.shopper_token}{t}"
        ),
    ),
}


@pytest.mark.parametrize("name", list(FRONT_CASES))
def test_front_paths_leave_a_nul_to_django_and_answer_as_it_does(world: World, name: str) -> None:
    wrap, make = FRONT_CASES[name]
    django = CountingWSGI()
    front = wrap(django)
    before = _project_rows()
    through_django = _call(django, make(world, NUL))
    through_front = _call(front, make(world, NUL))
    assert django.calls == 2, "the front path answered a request with a NUL itself"
    assert through_front == through_django
    status, _, body = through_front
    assert status.startswith("422 ")
    assert json.loads(body)["code"] == "invalid_characters"
    assert _project_rows() == before

    calls = django.calls
    clean_status, _, clean_body = _call(front, make(world, ""))
    assert clean_status.split()[0] in ("200", "201"), clean_body
    assert django.calls == calls, "the front path left a request without a NUL to Django"


def test_text_that_only_looks_like_a_nul_is_posted_through_django_unchanged(world: World) -> None:
    """A backslash before "u0000", and "%00" in JSON, are text: the front path's cheap look hands them
    to Django, which takes them."""
    django = CountingWSGI()
    front = with_status_post_wsgi(django)
    text = "C:\\u0000 and 100%00"
    environ = _environ(
        "POST",
        "/api/v1/statuses",
        json.dumps({"status": text}).encode(),
        "application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.shopper_token}",
    )
    status, _, body = _call(front, environ)
    assert status.startswith("200 "), body
    assert django.calls == 1
    assert Post.objects.get(pk=json.loads(body)["id"]).text == text


def test_the_cheap_looks() -> None:
    assert raw_may_hold_nul(b'{"a": "\\u0000"}') and raw_may_hold_nul(b"a=%00") and raw_may_hold_nul(b"\x00")
    assert not raw_may_hold_nul(b'{"a": "%0 0 u000"}')
    assert query_holds_nul("a=%00") and query_holds_nul(b"a=%00") and query_holds_nul("a=\x00")
    assert not query_holds_nul("a=%2500") and not query_holds_nul(b"a=%20")


async def _asgi_post(
    app: Any, path: str, body: bytes, content_type: str, token: str, *, chunked: bool = False
) -> tuple[int, bytes]:
    length = (b"transfer-encoding", b"chunked") if chunked else (b"content-length", str(len(body)).encode())
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [
            (b"host", b"testserver"), (b"content-type", content_type.encode()),
            length, (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("192.0.2.44", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    communicator = ApplicationCommunicator(app, scope)
    if chunked:  # the body as the server hands a chunked one on: in pieces, with no length announced
        half = len(body) // 2
        await communicator.send_input({"type": "http.request", "body": body[:half], "more_body": True})
        body = body[half:]
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(10)
    content = b""
    while True:
        message = await communicator.receive_output(10)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    return start["status"], content


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/v1/statuses", json.dumps({"status": f"拼团{NUL}"}).encode(), "application/json"),
        (
            "/api/v2/media",
            _multipart({"description": f"图{NUL}"}),
            f"multipart/form-data; boundary={BOUNDARY}",
        ),
    ],
)
def test_under_asgi_the_front_path_and_the_stack_refuse_alike(
    world: World, path: str, body: bytes, content_type: str
) -> None:
    """The served stack (ASGI, its middleware on the event loop, a multipart form parsed on a thread)."""
    from weituan.asgi import application

    before = _project_rows()
    for app in (application, get_asgi_application()):
        status, content = asyncio.run(_asgi_post(app, path, body, content_type, world.shopper_token))
        assert status == 422
        assert json.loads(content)["code"] == "invalid_characters"
    assert _project_rows() == before


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_under_asgi_a_chunked_body_is_refused_too(world: World, content_type: str) -> None:
    """Sent without a Content-Length, a body reaches the view whole all the same (Django receives it
    before the view runs), so it is looked at as any other."""
    from weituan.asgi import application

    text = f"拼团{NUL}"
    body = (
        json.dumps({"status": text}).encode()
        if content_type == "application/json"
        else urlencode({"status": text}).encode()
    )
    before = _project_rows()
    for app in (application, get_asgi_application()):
        status, content = asyncio.run(
            _asgi_post(app, "/api/v1/statuses", body, content_type, world.shopper_token, chunked=True)
        )
        assert status == 422, content
        assert json.loads(content)["code"] == "invalid_characters"
    assert _project_rows() == before
