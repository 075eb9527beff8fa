"""POST /api/v1/statuses answered in front of Django: the Status it returns is the one a read of it gives,
refusals come in the API's shape, and whatever it must not answer goes to Django unchanged."""

import asyncio
import json
import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from django.test import Client, RequestFactory
from django.utils import timezone

from weituan.accounts import middleware as last_seen
from weituan.accounts.models import User
from weituan.accounts.tokens import access_token_issue
from weituan.core import ratelimit
from weituan.core.front import body_buffered
from weituan.core.testing import CountingWSGI
from weituan.mastodon.api_statuses_fast import MAX_BODY, with_status_post, with_status_post_wsgi
from weituan.microblog.models import Mention, Notification, Post, PostTopic, Topic
from weituan.microblog.search.queries import posts_search
from weituan.microblog.stats import account_counts, topic_counts

STATUSES = "/api/v1/statuses"

pytestmark = pytest.mark.django_db


class _Detached:
    """As Django's test client does: the test's transaction must outlive the request."""

    def __enter__(self) -> None:
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)

    def __exit__(self, *exc: object) -> None:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _environ(body: bytes, content_type: str, **headers: Any) -> dict[str, Any]:
    return RequestFactory().post(STATUSES, data=body, content_type=content_type, **headers).environ


def wsgi_post(
    app: Any, data: Any, *, content_type: str = "application/json", **headers: Any
) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(data).encode() if content_type == "application/json" else urlencode(data).encode()
    started: list[Any] = []
    with _Detached():
        chunks = app(
            _environ(body, content_type, **headers), lambda status, pairs: started.extend([status, pairs])
        )
        content = b"".join(chunks)
    return int(started[0].split()[0]), dict(started[1]), content


def asgi_post(app: Any, data: Any, **headers: Any) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(data).encode()
    scope_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope_headers += [(name.encode(), value.encode()) for name, value in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": STATUSES,
        "raw_path": STATUSES.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *scope_headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    # The body arrives in two pieces, as a client may send it.
    messages = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # The request runs on the fast path's own thread, whose connection Django's request end closes.
    asyncio.run(app(scope, receive, send))
    start, payload = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, payload


def _call(app: Any, environ: dict[str, Any]) -> tuple[int, bytes]:
    started: list[Any] = []
    with _Detached():
        content = b"".join(app(environ, lambda status, pairs: started.extend([status, pairs])))
    return int(started[0].split()[0]), content


def bearer(user: User, scopes: str = "read write follow push") -> dict[str, Any]:
    raw, _ = access_token_issue(user=user, scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _read_back(status_id: str, headers: dict[str, Any]) -> Any:
    return Client().get(f"{STATUSES}/{status_id}", **headers)


@pytest.mark.parametrize(
    "data",
    [
        {"status": "拼团进行中 #双十一# @meituan_shop https://shop.example/d/1"},
        {"status": "two topics #b# #a# #B#", "visibility": "unlisted", "language": "zh-Hans-CN-x"},
        {"status": "   plain, with a first topic ever #新话题#   ", "visibility": "private"},
    ],
)
def test_the_answer_is_the_status_a_read_of_it_gives(
    shopper: User, merchant: User, data: dict[str, str]
) -> None:
    headers = bearer(shopper)
    app = CountingWSGI()
    status, fast_headers, body = wsgi_post(with_status_post_wsgi(app), data, **headers)
    assert app.calls == 0  # answered in front of Django
    assert status == 200, body
    made = json.loads(body)
    read = _read_back(made["id"], headers)
    assert body == read.content  # byte for byte what GET /statuses/:id answers
    assert fast_headers.pop("Content-Length") == str(len(body))
    assert fast_headers == {name: value for name, value in read.items() if name != "Content-Length"}
    # And what the view itself answers for the same request.
    view = Client().post(STATUSES, json.dumps(data), content_type="application/json", **headers)
    assert view.status_code == 200
    assert fast_headers == {name: value for name, value in view.items() if name != "Content-Length"}
    expected = view.json()
    for key in ("id", "uri", "url", "created_at"):
        expected[key] = made[key]
    expected["account"]["statuses_count"] = made["account"]["statuses_count"]
    # Each post's URLs have short links of their own.
    for status in (made, expected):
        status["content"] = re.sub(r"/s/[A-Za-z0-9]+", "/s/<code>", status["content"])
    assert made == expected


def test_everything_a_post_records_is_recorded(shopper: User, merchant: User, run_on_commit: Any) -> None:
    Notification.objects.all().delete()
    with run_on_commit():
        status, _, body = wsgi_post(
            with_status_post_wsgi(CountingWSGI()),
            {"status": "找 @meituan_shop 拼 #火锅# https://shop.example/d/1"},
            **bearer(shopper),
        )
    assert status == 200
    post = Post.objects.get(id=int(json.loads(body)["id"]))
    assert (post.author_id, post.kind, post.text) == (
        shopper.pk,
        "original",
        "找 @meituan_shop 拼 #火锅# https://shop.example/d/1",
    )
    assert list(Mention.objects.filter(post=post).values_list("user_id", flat=True)) == [merchant.pk]
    assert Notification.objects.filter(recipient=merchant, kind="mention", post=post).count() == 1
    topic = Topic.objects.get(name="火锅")
    uses = topic_counts([topic.id])[topic.id].posts
    assert (uses, PostTopic.objects.filter(post=post, topic=topic).count()) == (1, 1)
    assert account_counts([shopper.pk])[shopper.pk].posts == 1
    assert posts_search(query="火锅", viewer=None) == [post.id]


def test_refusals_come_in_the_api_shape(
    shopper: User, outsider: User, settings: Any, monkeypatch: Any
) -> None:
    headers = bearer(shopper)

    def fast(data: Any) -> tuple[int, dict[str, str], bytes]:
        app = CountingWSGI()
        answer = wsgi_post(with_status_post_wsgi(app), data, **headers)
        assert app.calls == 0
        return answer

    for data, code in [
        ({"status": "  "}, "empty_post"),
        ({"status": "hi", "in_reply_to_id": "123"}, "not_found"),
        ({"status": "hi", "quoted_status_id": "abc"}, "invalid_id"),
        ({"status": "hi", "visibility": "direct"}, "invalid_visibility"),
        ({"status": "hi", "poll": {"options": ["a"]}}, "polls_unsupported"),
        ({"status": "hi", "scheduled_at": "2030-01-01T00:00:00Z"}, "scheduling_unsupported"),
        ({"status": "hi", "spoiler_text": "剧透"}, "content_warnings_unsupported"),
        ({"status": "hi", "sensitive": True}, "content_warnings_unsupported"),
        ({"status": "hi", "sensitive": "maybe"}, "invalid"),
    ]:
        status, _, body = fast(data)
        view = Client().post(STATUSES, json.dumps(data), content_type="application/json", **headers)
        assert (status, json.loads(body)["code"]) == (view.status_code, code)
        assert body == view.content
    assert Post.objects.count() == 0
    # The limit: one write a minute (the clock held still, so the window cannot turn mid-test).
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 1
    headers = bearer(outsider)
    assert fast({"status": "1"})[0] == 200
    status, fast_headers, body = fast({"status": "2"})
    view = Client().post(STATUSES, json.dumps({"status": "3"}), content_type="application/json", **headers)
    assert (status, json.loads(body)["code"]) == (429, "rate_limited")
    assert body == view.content
    assert fast_headers["Retry-After"] == view["Retry-After"] == "30"
    assert fast_headers["X-RateLimit-Reset"] == view["X-RateLimit-Reset"] == "2027-01-15T08:01:00.000Z"
    assert Post.objects.count() == 1


def test_the_idempotency_key_replays_through_the_fast_path(shopper: User) -> None:
    headers = {**bearer(shopper), "HTTP_IDEMPOTENCY_KEY": "k1"}
    app = with_status_post_wsgi(CountingWSGI())
    first = wsgi_post(app, {"status": "一次"}, **headers)
    again = wsgi_post(app, {"status": "一次"}, **headers)
    other = wsgi_post(app, {"status": "两次"}, **headers)
    assert (first[0], again[0]) == (200, 200)
    assert json.loads(first[2])["id"] == json.loads(again[2])["id"]
    assert (other[0], json.loads(other[2])["code"]) == (422, "idempotency_mismatch")
    assert Post.objects.count() == 1


def test_form_bodies_are_answered_too(shopper: User) -> None:
    headers = bearer(shopper)
    app = CountingWSGI()
    status, _, body = wsgi_post(
        with_status_post_wsgi(app),
        {"status": "表单 #拼团#", "visibility": "unlisted"},
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert (status, app.calls, json.loads(body)["visibility"]) == (200, 0, "unlisted")
    assert body == _read_back(json.loads(body)["id"], headers).content


@pytest.mark.django_db(transaction=True)
def test_asgi_answers_on_its_threads_and_passes_the_rest_with_its_body(shopper: User) -> None:
    headers = bearer(shopper)
    token = {"authorization": headers["HTTP_AUTHORIZATION"]}
    passed: list[bytes] = []

    async def django_stand_in(scope: Any, receive: Any, send: Any) -> None:
        chunks = [await receive()]
        while chunks[-1].get("more_body"):
            chunks.append(await receive())
        passed.append(b"".join(chunk["body"] for chunk in chunks))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = with_status_post(django_stand_in)
    status, _, body = asgi_post(app, {"status": "异步 #拼团#"}, **token)
    assert status == 200
    assert body == _read_back(json.loads(body)["id"], headers).content
    status, _, body = asgi_post(app, {"status": " "}, **token)
    view = Client().post(STATUSES, json.dumps({"status": " "}), content_type="application/json", **headers)
    assert (status, body) == (422, view.content)
    assert passed == []
    # Left to Django, which reads the same body: no token, a wrong one.
    assert asgi_post(app, {"status": "x"})[0] == 418
    assert asgi_post(app, {"status": "y"}, authorization="Bearer wrong")[0] == 418
    assert passed == [b'{"status": "x"}', b'{"status": "y"}']
    assert Post.objects.count() == 1


def test_a_body_longer_than_its_content_length_is_left_whole_to_django() -> None:
    pieces = [b"x" * 40_000, b"y" * 40_000, b"z" * 10]
    assert sum(map(len, pieces)) > MAX_BODY
    messages = [{"type": "http.request", "body": p, "more_body": i < 2} for i, p in enumerate(pieces)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def read() -> tuple[bytes | None, bytes]:
        body, replay = await body_buffered(receive, MAX_BODY)
        got = [await replay()]
        while got[-1].get("more_body"):
            got.append(await replay())
        return body, b"".join(message["body"] for message in got)

    body, passed = asyncio.run(read())
    assert body is None
    assert passed == b"".join(pieces)


def test_requests_left_to_django(shopper: User) -> None:
    read_only = bearer(shopper, scopes="read")
    good = bearer(shopper)
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "application/json"),
        ({"HTTP_AUTHORIZATION": "Basic abc"}, "application/json"),
        ({"HTTP_AUTHORIZATION": "Bearer nope"}, "application/json"),
        (read_only, "application/json"),
        ({**good, "HTTP_HOST": "evil.example"}, "application/json"),
        (good, "text/plain"),  # another body type: Django reads it (here, the query string's params)
    ]
    statuses = []
    for headers, content_type in cases:
        app = CountingWSGI()
        environ = _environ(b'{"status": "x"}', content_type, **headers)
        if content_type == "text/plain":
            environ["QUERY_STRING"] = "status=plain"
        status, _ = _call(with_status_post_wsgi(app), environ)
        assert app.calls == 1, (headers, content_type)
        statuses.append(status)
    assert statuses == [401, 401, 401, 403, 400, 200]  # no token and no session: 401, as Mastodon answers
    assert list(Post.objects.values_list("text", flat=True)) == ["plain"]


def test_the_caller_is_marked_seen(shopper: User) -> None:
    User.objects.filter(pk=shopper.pk).update(last_seen_at=None)
    cache.clear()
    last_seen._marked_until.clear()
    app = CountingWSGI()
    status, _, _ = wsgi_post(with_status_post_wsgi(app), {"status": "在线"}, **bearer(shopper))
    assert (status, app.calls) == (200, 0)
    seen = User.objects.get(pk=shopper.pk).last_seen_at
    assert seen is not None and seen <= timezone.now()


def test_kept_middleware_headers_answer_each_language_as_the_view_does(shopper: User) -> None:
    # The middleware's headers of a 200 are made once per host, scheme and language and kept: later
    # posts in either language, and a refusal after them (which has the middleware run for it), are
    # answered with what the view answers.
    from weituan.mastodon import api_statuses_fast

    api_statuses_fast._prologues.forget()
    headers = bearer(shopper)
    app = CountingWSGI()
    for language in ("zh-hans", "en", "zh-hans", "en"):
        data = {"status": f"说 {language}"}
        status, fast_headers, _ = wsgi_post(
            with_status_post_wsgi(app), data, HTTP_ACCEPT_LANGUAGE=language, **headers
        )
        view = Client().post(
            STATUSES,
            json.dumps(data),
            content_type="application/json",
            HTTP_ACCEPT_LANGUAGE=language,
            **headers,
        )
        assert (status, view.status_code) == (200, 200)
        fast_headers.pop("Content-Length")
        assert fast_headers == {name: value for name, value in view.items() if name != "Content-Length"}
    assert len(api_statuses_fast._prologues._kept) == 2
    refused = {"status": "长" * 141}
    status, fast_headers, body = wsgi_post(
        with_status_post_wsgi(app), refused, HTTP_ACCEPT_LANGUAGE="en", **headers
    )
    view = Client().post(
        STATUSES, json.dumps(refused), content_type="application/json", HTTP_ACCEPT_LANGUAGE="en", **headers
    )
    assert (status, json.loads(body)["code"]) == (view.status_code, "post_too_long")
    assert body == view.content
    assert fast_headers == dict(view.items())
    assert app.calls == 0


def test_a_host_outside_allowed_hosts_is_left_to_django(shopper: User) -> None:
    app = CountingWSGI()
    wsgi_post(with_status_post_wsgi(app), {"status": "别处"}, HTTP_HOST="evil.example", **bearer(shopper))
    assert app.calls == 1  # Django answers it (a 400 for the host), nothing written here
    assert Post.objects.count() == 0
