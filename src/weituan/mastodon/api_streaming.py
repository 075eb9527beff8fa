"""Mastodon API: the streaming paths, which Weituan does not offer, answered with a clear refusal.

Mastodon's instance documents must carry a streaming URL (`urls.streaming_api` in v1,
`configuration.urls.streaming` in v2): strict clients fail to decode an instance without one, or with
null. So the URL names this server, and what a client finds there says plainly that there is no
streaming: every HTTP path under /api/v1/streaming (the health check and the server-sent event streams)
answers 501 with the code `streaming_unavailable`, and a WebSocket handshake is refused the same way.
Clients then refresh by polling the timelines and notifications, as they do when a stream drops.
"""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from django.http import HttpRequest
from ninja import Router, Schema

from weituan.core.errors import ServiceError

router = Router(tags=["mastodon:streaming"])

STREAMING_UNAVAILABLE = "streaming_unavailable"
MESSAGE = "This server offers no streaming; poll the timelines and notifications instead"

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
    "/streaming", auth=None, response={501: StreamingRefusalOut}, summary="Streaming (not offered: 501)"
)
def streaming(request: HttpRequest) -> None:
    raise StreamingUnavailable(MESSAGE)


@router.get("/streaming/{path:stream}", auth=None, include_in_schema=False)
def streaming_stream(request: HttpRequest, stream: str) -> None:
    """The health check (`/streaming/health`) and every server-sent event stream (`/streaming/user`...)."""
    raise StreamingUnavailable(MESSAGE)


def with_streaming_refused(django_app: Any) -> Any:
    """`django_app`, with WebSocket connections refused before they reach Django (which serves only
    HTTP): with the answer the HTTP paths give when the server can send one (the ASGI
    `websocket.http.response` extension), else with a plain refusal (the server answers 403)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await django_app(scope, receive, send)
            return
        await receive()  # websocket.connect
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})
            return
        body = orjson.dumps({"error": MESSAGE, "code": STREAMING_UNAVAILABLE})
        headers = [(b"content-type", b"application/json; charset=utf-8")]
        await send({"type": "websocket.http.response.start", "status": 501, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})

    return app
