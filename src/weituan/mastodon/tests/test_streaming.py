"""The streaming paths where no stream is served: the WSGI server (`--server granian`) answers 501
`streaming_unavailable` on every HTTP path under /api/v1/streaming; WebSocket handshakes the ASGI
application refuses before the upgrade; the streams' bounds. The ASGI streams themselves are tested live
in test_streaming_live (server-sent events) and test_streaming_websocket."""

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/streaming",
        "/api/v1/streaming/health",
        "/api/v1/streaming/user",
        "/api/v1/streaming/public/local",
    ],
)
def test_every_streaming_path_answers_501_with_a_code(path: str, api_as: Any, shopper: Any) -> None:
    for client in (Client(), api_as(shopper)):
        response = client.get(path, {"stream": "user"})
        assert response.status_code == 501
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["code"] == "streaming_unavailable"


def test_the_instance_documents_name_this_server() -> None:
    v1, v2 = Client().get("/api/v1/instance").json(), Client().get("/api/v2/instance").json()
    assert v1["urls"]["streaming_api"] == v2["configuration"]["urls"]["streaming"] == "ws://testserver"


def _handshake(scope_extensions: dict[str, Any], path: str = "/api/v1/streaming") -> list[dict[str, Any]]:
    """What the served application sends back for a WebSocket connection without a token to `path`."""
    from weituan.asgi import application

    sent: list[dict[str, Any]] = []
    scope = {
        "type": "websocket",
        "path": path,
        "query_string": b"stream=user",
        "headers": [],
        "subprotocols": [],
        "extensions": scope_extensions,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(application(scope, receive, send))
    return sent


def test_a_websocket_handshake_without_a_token_is_refused_before_the_upgrade() -> None:
    start, body = _handshake({"websocket.http.response": {}})
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 401)
    assert (b"www-authenticate", b'Bearer realm="Weituan", error="invalid_token"') in start["headers"]
    assert body["type"] == "websocket.http.response.body"
    assert orjson.loads(body["body"]) == {"error": "Missing access token", "code": "token_required"}


def test_a_websocket_elsewhere_is_refused_with_a_code() -> None:
    start, body = _handshake({"websocket.http.response": {}}, path="/api/v1/timelines/home")
    assert (start["type"], start["status"]) == ("websocket.http.response.start", 404)
    assert orjson.loads(body["body"])["code"] == "not_found"


def test_a_server_without_http_answers_to_websockets_refuses_the_handshake() -> None:
    # Closing before accepting: the server answers the handshake 403.
    assert _handshake({}) == [{"type": "websocket.close", "code": 1008}]


def test_a_stream_too_slow_to_follow_is_ended_not_buffered_for() -> None:
    from weituan.mastodon.streaming_asgi import END, STREAM_QUEUE, Stream
    from weituan.mastodon.streaming_frames import Channel, Reader

    async def overflow() -> tuple[bool, bool, list[Any]]:
        stream = Stream(Reader(user=None, scopes="read"), [Channel("public")], request=None)
        for n in range(STREAM_QUEUE + 1):
            stream.offer({"t": "post", "id": n, "a": 1})
        left = [stream.queue.get_nowait() for _ in range(stream.queue.qsize())]
        return stream.ended, stream.dropped, left

    ended, dropped, left = asyncio.run(overflow())
    # Nothing waits but the end: the events it could not take are let go.
    assert (ended, dropped, left) == (True, True, [END])


def test_nothing_is_published_while_nobody_streams(django_capture_on_commit_callbacks: Any) -> None:
    from weituan.core.stream_events import stream_listen, stream_publish, streams_listening

    heard: list[Any] = []
    if not streams_listening():
        with django_capture_on_commit_callbacks() as callbacks:
            stream_publish({"t": "post", "id": 1, "a": 1})
        assert callbacks == []  # not even a callback left for the commit
    stop = stream_listen(heard.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            stream_publish({"t": "post", "id": 2, "a": 1})
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heard == [{"t": "post", "id": 2, "a": 1}]
    finally:
        stop()


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_rendering_meets_a_passing_lock_is_rendered_again(shopper: Any, merchant: Any) -> None:
    import threading

    from django.db import connection, transaction
    from django.db.models import F
    from django.test import RequestFactory

    from weituan.mastodon.streaming_asgi import _rendered
    from weituan.mastodon.streaming_frames import Channel, Reader
    from weituan.microblog.models import Post
    from weituan.microblog.services.posts import post_create

    post = post_create(author=merchant, text="今晚开团")
    reader = Reader(user=shopper, scopes="read")
    event = {"t": "post", "id": post.id, "a": merchant.pk}
    rendered: list[Any] = []
    started = threading.Event()

    def render() -> None:
        started.set()
        try:
            rendered.extend(_rendered(reader, [Channel("public")], event, RequestFactory().get("/")))
        finally:
            connection.close()

    renderer = threading.Thread(target=render)
    with transaction.atomic():
        # A write holds the posts' table while the stream renders (SQLite refuses the read meanwhile).
        Post.objects.filter(id=post.id).update(likes_count=F("likes_count"))
        renderer.start()
        assert started.wait(5)
        time.sleep(0.03)
    renderer.join(10)
    assert [(frame.channel, frame.event, orjson.loads(frame.payload or "")["id"]) for frame in rendered] == [
        (Channel("public"), "update", str(post.id))
    ]
