"""The home timeline answered in front of Django: the same bytes and headers as the view, and every
request it must not answer (no token, a revoked or under-scoped token, a bad query) left to Django."""

import asyncio
import re
from typing import Any

import pytest
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from django.test import Client, RequestFactory
from django.utils import timezone

from weituan.accounts import middleware as last_seen
from weituan.accounts.models import AccessToken
from weituan.accounts.tokens import access_token_issue, access_token_revoke
from weituan.core.testing import CountingWSGI, make_user
from weituan.mastodon.api_timelines_fast import with_home_timeline, with_home_timeline_wsgi
from weituan.microblog.services.interactions import like_add
from weituan.microblog.services.relations import mute_create
from weituan.microblog.timelines.queries import home_timeline_ids

HOME = "/api/v1/timelines/home"


def _wsgi_get(
    app: Any, url: str, *, secure: bool = False, **headers: Any
) -> tuple[str, dict[str, str], bytes]:
    environ = RequestFactory().get(url, secure=secure, **headers).environ
    started: list[Any] = []
    # As Django's test client does: the test's transaction must outlive the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(app(environ, lambda status, pairs: started.extend([status, pairs])))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started[0], dict(started[1]), body


@pytest.fixture
def home_world(shopper: Any, merchant: Any, follow: Any, post_as: Any, repost_as: Any) -> list[int]:
    """The shopper follows the merchant, who posted, quoted and reposted; the shopper liked one post."""
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    first = post_as(merchant, "拼团开始 #双十一# @shopper")
    second = post_as(merchant, "second deal")
    repost_as(merchant, first, "转发理由")
    repost_as(merchant, second)
    like_add(user=shopper, post_id=first.id)
    return home_timeline_ids(shopper.pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["", "?limit=2", "?limit=2&max_id={third}", "?min_id={third}", "?since_id={third}&limit=40&x=1"],
)
@pytest.mark.parametrize("language", ["", "en"])
def test_fast_path_answers_as_the_view(
    backend: str, shopper: Any, home_world: list[int], query: str, language: str
) -> None:
    assert len(home_world) == 4
    url = HOME + query.format(third=home_world[2])
    raw, _ = access_token_issue(user=shopper)
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    if language:
        headers["HTTP_ACCEPT_LANGUAGE"] = language
    view = Client().get(url, **headers)
    app = CountingWSGI()
    for _ in range(2):  # the second time from the kept prologue and query
        status, fast_headers, body = _wsgi_get(with_home_timeline_wsgi(app), url, **headers)
        assert app.calls == 0  # answered in front of Django
        assert status == "200 OK"
        assert view.status_code == 200
        assert body == view.content
        assert fast_headers == dict(view.items())
    assert len(view.json()) > 0


@pytest.mark.django_db
def test_each_host_scheme_and_language_gets_its_own_headers(
    shopper: Any, home_world: list[int], settings: Any
) -> None:
    """Requests that differ in what the middleware read (language, host, scheme, a cookie, an origin) are answered
    as the view answers each, in any order, whichever was answered first."""
    settings.ALLOWED_HOSTS = ["testserver", "shop.example"]
    settings.SECURE_HSTS_SECONDS = 3600
    raw, _ = access_token_issue(user=shopper)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    variants: list[dict[str, Any]] = [
        {},
        {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"},
        {"HTTP_ACCEPT_LANGUAGE": "en"},
        {"HTTP_HOST": "shop.example"},
        {"HTTP_HOST": "shop.example:8080"},
        {"secure": True},
        {"HTTP_COOKIE": "django_language=zh-hans"},
        {"HTTP_ORIGIN": "https://elk.zone"},  # a browser client of another site: the CORS headers
    ]
    app = CountingWSGI()
    fast = with_home_timeline_wsgi(app)
    seen_languages = set()
    strict: list[dict[str, Any]] = []
    cross_origin: list[dict[str, Any]] = []
    for variant in [*variants, *reversed(variants)]:
        headers = {**auth, **variant}
        view = Client().get(HOME + "?limit=2", **headers)
        status, fast_headers, body = _wsgi_get(fast, HOME + "?limit=2", **headers)
        assert (status, app.calls) == ("200 OK", 0), variant
        assert body == view.content, variant
        assert fast_headers == dict(view.items()), variant
        seen_languages.add(fast_headers["Content-Language"])
        if "Strict-Transport-Security" in fast_headers:
            strict.append(variant)
        if "Access-Control-Allow-Origin" in fast_headers:
            cross_origin.append(variant)
    assert seen_languages == {"en", "zh-hans"}
    assert strict == [{"secure": True}] * 2
    assert cross_origin == [{"HTTP_ORIGIN": "https://elk.zone"}] * 2


@pytest.mark.django_db
def test_a_settings_change_is_seen_by_the_next_request(
    shopper: Any, home_world: list[int], settings: Any
) -> None:
    raw, _ = access_token_issue(user=shopper)
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_HOST": "shop.example"}
    settings.ALLOWED_HOSTS = ["testserver", "shop.example"]
    app = CountingWSGI()
    fast = with_home_timeline_wsgi(app)
    assert _wsgi_get(fast, HOME, **headers)[0] == "200 OK"
    settings.ALLOWED_HOSTS = ["testserver"]
    assert _wsgi_get(fast, HOME, **headers)[0].startswith("400")
    assert app.calls == 1
    settings.SECURE_SSL_REDIRECT = True
    app = CountingWSGI()  # Django's own middleware read the settings when its handler was made
    status, fast_headers, _ = _wsgi_get(
        with_home_timeline_wsgi(app), HOME, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert status.startswith("301") and fast_headers["Location"].startswith("https://")
    assert app.calls == 1


@pytest.mark.django_db
def test_fast_path_marks_the_caller_seen(shopper: Any, home_world: list[int]) -> None:
    type(shopper).objects.filter(pk=shopper.pk).update(last_seen_at=None)
    cache.clear()
    last_seen._marked_until.clear()
    raw, _ = access_token_issue(user=shopper)
    app = CountingWSGI()
    status, _, _ = _wsgi_get(with_home_timeline_wsgi(app), HOME, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert (status, app.calls) == ("200 OK", 0)
    seen = type(shopper).objects.get(pk=shopper.pk).last_seen_at
    assert seen is not None and seen <= timezone.now()


@pytest.mark.django_db
def test_requests_the_fast_path_leaves_to_django(shopper: Any, home_world: list[int]) -> None:
    raw, _ = access_token_issue(user=shopper)
    write_only, _ = access_token_issue(user=shopper, scopes="write")
    cases: list[tuple[str, dict[str, Any], int | None]] = [
        (HOME, {}, 401),
        (HOME, {"HTTP_AUTHORIZATION": "Basic abc"}, 401),
        (HOME, {"HTTP_AUTHORIZATION": "Bearer nope"}, 401),
        (HOME + "?limit=0", {"HTTP_AUTHORIZATION": f"Bearer {raw}"}, 422),
        (HOME + "?max_id=x", {"HTTP_AUTHORIZATION": f"Bearer {raw}"}, 422),
        (HOME, {"HTTP_AUTHORIZATION": f"Bearer {write_only}"}, None),
        (HOME, {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_HOST": "evil.example"}, 400),
    ]
    for url, headers, expected in cases:
        app = CountingWSGI()
        status, _, body = _wsgi_get(with_home_timeline_wsgi(app), url, **headers)
        view = Client().get(url, **headers)
        assert app.calls == 1, url
        assert int(status.split()[0]) == view.status_code
        assert body == view.content
        if expected is not None:
            assert view.status_code == expected
        else:
            assert view.status_code in (401, 403)


def test_a_refused_user_agent_is_left_to_django(shopper: Any, home_world: list[int], settings: Any) -> None:
    settings.DISALLOWED_USER_AGENTS = [re.compile("BadBot")]
    raw, _ = access_token_issue(user=shopper)
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_USER_AGENT": "BadBot/1.0"}
    app = CountingWSGI()
    status, _, _ = _wsgi_get(with_home_timeline_wsgi(app), HOME, **headers)
    assert app.calls == 1
    assert int(status.split()[0]) == Client().get(HOME, **headers).status_code == 403


@pytest.mark.django_db
def test_revoked_token_and_deactivated_user_are_refused_at_once(shopper: Any, home_world: list[int]) -> None:
    raw, token = access_token_issue(user=shopper)
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    app = CountingWSGI()
    fast = with_home_timeline_wsgi(app)
    assert _wsgi_get(fast, HOME, **headers)[0] == "200 OK"
    assert access_token_revoke(raw=raw)
    status, _, body = _wsgi_get(fast, HOME, **headers)
    assert (status, app.calls) == ("401 Unauthorized", 1)
    assert b'"code":"invalid_token"' in body.replace(b" ", b"")
    other, _ = access_token_issue(user=shopper)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {other}"}
    assert _wsgi_get(fast, HOME, **headers)[0] == "200 OK"
    type(shopper).objects.filter(pk=shopper.pk).update(is_active=False)
    assert _wsgi_get(fast, HOME, **headers)[0] == "401 Unauthorized"
    assert app.calls == 2
    revoked_at = AccessToken.objects.get(pk=token.pk).revoked_at
    assert revoked_at is not None and revoked_at <= timezone.now()


def _asgi_get(app: Any, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "http_version": "1.1",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.django_db(transaction=True)
def test_asgi_fast_path_answers_on_its_threads_and_passes_the_rest(
    shopper: Any, merchant: Any, follow: Any, post_as: Any
) -> None:
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    post = post_as(merchant, "拼团开始")
    raw, _ = access_token_issue(user=shopper)
    passed: list[str] = []

    async def django_stand_in(scope: Any, receive: Any, send: Any) -> None:
        passed.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = with_home_timeline(django_stand_in)
    view = Client().get(HOME + "?limit=2", HTTP_AUTHORIZATION=f"Bearer {raw}")
    for extra in ([], [], [(b"accept-language", b"zh-CN")], [(b"cookie", b"a=b")]):
        sent = _asgi_get(app, HOME, b"limit=2", [(b"authorization", f"Bearer {raw}".encode()), *extra])
        assert passed == []
        assert sent[0]["status"] == 200
        assert sent[1]["body"] == view.content
        fast_headers = dict((k.decode(), v.decode()) for k, v in sent[0]["headers"])
        if extra and extra[0][0] == b"accept-language":
            assert fast_headers.pop("Content-Language") == "zh-hans"
            fast_headers["Content-Language"] = view["Content-Language"]
        assert fast_headers == dict(view.items())
    assert [status["id"] for status in view.json()] == [str(post.id)]
    for path, headers in [
        (HOME, []),
        (HOME, [(b"authorization", b"Bearer wrong")]),
        ("/api/v1/timelines/public", [(b"authorization", f"Bearer {raw}".encode())]),
    ]:
        assert _asgi_get(app, path, b"", headers)[0]["status"] == 418
    assert passed == [HOME, HOME, "/api/v1/timelines/public"]


@pytest.mark.django_db
def test_fast_path_leaves_a_hidden_hop_of_a_chain_out_as_the_view_does(
    backend: str,
    shopper: Any,
    merchant: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    repost_as: Any,
    run_on_commit: Any,
) -> None:
    """The shopper muted the account whose words sit in the middle of a quote's chain; the outsider
    did not. Both read the same kept renderings, in turn, in front of Django and through it."""
    middle = make_user("middle")
    with run_on_commit():
        mute_create(muter=shopper, muted_id=middle.pk)
    for reader in (shopper, outsider):
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    original = post_as(make_user("noodle_shop"), "牛肉面买一送一")
    repost_as(merchant, repost_as(middle, original, "同去"), "冲")
    for _round in range(2):
        for reader in (outsider, shopper):
            raw, _ = access_token_issue(user=reader)
            headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
            view = Client().get(HOME, **headers)
            app = CountingWSGI()
            status, _, body = _wsgi_get(with_home_timeline_wsgi(app), HOME, **headers)
            assert (status, app.calls, body) == ("200 OK", 0, view.content)
            assert ("同去" in body.decode()) is (reader == outsider)
            assert view.json()[0]["content"].startswith("<p>冲")


@pytest.mark.django_db
def test_a_get_with_a_body_goes_to_django_whose_guards_read_it(shopper: Any, home_world: list[int]) -> None:
    raw, _ = access_token_issue(user=shopper)
    environ = (
        RequestFactory()
        .generic("GET", HOME, data=b'{"x": "\\u0000"}', content_type="application/json")
        .environ
    )
    environ["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    app = CountingWSGI()
    started: list[Any] = []
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(with_home_timeline_wsgi(app)(environ, lambda status, pairs: started.append(status)))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert app.calls == 1
    assert started[0].startswith("422")
    assert b"invalid_characters" in body


def test_asgi_home_reads_run_on_one_thread_on_sqlite_and_four_on_postgresql(monkeypatch: Any) -> None:
    """SQLite's statements wait on nothing, so a second thread would only trade the GIL; PostgreSQL's
    wait on the network, which other threads' reads fill."""
    from django.db import connection

    from weituan.mastodon import api_timelines_fast

    made: list[int] = []

    class Recorded(api_timelines_fast.ThreadPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any) -> None:
            made.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(api_timelines_fast, "ThreadPoolExecutor", Recorded)
    with_home_timeline(lambda *args: None)
    with_home_timeline(lambda *args: None, threads=3)
    assert made == [4 if connection.vendor == "postgresql" else 1, 3]
