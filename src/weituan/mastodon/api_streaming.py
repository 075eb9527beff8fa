"""Mastodon API: the streaming paths, as the WSGI server answers them (with a clear refusal), and the
ASGI application's front for them.

Under ASGI (`weituan serve`, uvicorn) the server-sent event streams under /api/v1/streaming/ and the
WebSocket at /api/v1/streaming (Mastodon's multiplexed stream) are served in front of Django
(`with_streaming`, see `streaming_asgi` and `streaming_websocket`). The WSGI server (`--server
granian`) runs each request on one of its few threads (one on SQLite unless told), which a stream
would hold for as long as it is open, and has no WebSocket, so there every path under /api/v1/streaming answers 501 with the code
`streaming_unavailable`, and clients refresh by polling the timelines and notifications, as they do
when a stream drops.

Mastodon's instance documents must carry a streaming URL (`urls.streaming_api` in v1,
`configuration.urls.streaming` in v2): strict clients fail to decode an instance without one, or with
null. It names this server, which is where the streams are when it serves them: WebSocket clients
connect to `<streaming URL>/api/v1/streaming`.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from django.http import HttpRequest
from ninja import Router, Schema

from weituan.core.errors import ServiceError

router = Router(tags=["mastodon:streaming"])

STREAMING_UNAVAILABLE = "streaming_unavailable"
MESSAGE = (
    "This server offers no streaming (the WebSocket and the server-sent event streams are served by "
    "the ASGI server only); poll the timelines and notifications instead"
)
WEBSOCKET_ELSEWHERE = "WebSocket connections are served under /api/v1/streaming only"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StreamingUnavailable(ServiceError):
    code = STREAMING_UNAVAILABLE
    status = 501


class StreamingRefusalOut(Schema):
    error: str
    code: str


@router.get(
    "/streaming",
    auth=None,
    response={501: StreamingRefusalOut},
    summary="Streaming (ASGI server only; the WSGI server answers 501)",
)
def streaming(request: HttpRequest) -> None:
    raise StreamingUnavailable(MESSAGE)


@router.get("/streaming/{path:stream}", auth=None, include_in_schema=False)
def streaming_stream(request: HttpRequest, stream: str) -> None:
    """The health check (`/streaming/health`) and every server-sent event stream (`/streaming/user`...)."""
    raise StreamingUnavailable(MESSAGE)


def with_streaming(django_app: Any) -> Any:
    """`django_app`, with the requests and WebSocket connections under /api/v1/streaming answered in
    front of it (the streams are long responses on the event loop, see `streaming_asgi`), and other
    WebSocket connections refused before they reach Django (which serves only HTTP): 404 with a JSON
    answer when the server can send one (the ASGI `websocket.http.response` extension), else with a
    plain refusal (the server answers 403)."""
    from weituan.mastodon.streaming_asgi import STREAMING_PREFIX, event_stream
    from weituan.mastodon.streaming_websocket import websocket_stream

    def streaming(path: str) -> bool:
        return path == STREAMING_PREFIX or path.startswith(STREAMING_PREFIX + "/")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if streaming(scope["path"]):
                await event_stream(scope, receive, send)
                return
            await django_app(scope, receive, send)
            return
        if scope["type"] != "websocket":
            await django_app(scope, receive, send)
            return
        if streaming(scope["path"]):
            await websocket_stream(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        body = orjson.dumps({"error": WEBSOCKET_ELSEWHERE, "code": "not_found"})
        headers = [(b"content-type", b"application/json; charset=utf-8")]
        await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})

    return app
