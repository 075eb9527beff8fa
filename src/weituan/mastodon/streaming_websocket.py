"""Mastodon's streaming API over WebSocket: one connection at /api/v1/streaming carrying several streams.

The token comes as the REST API takes it (`Authorization: Bearer`, `access_token=`) or as browsers can
send it, in `Sec-WebSocket-Protocol` (answered with the same protocol, which browsers require). A
missing or bad token is refused before the upgrade, `401` with a JSON `error` and `code`, as Mastodon
does. The query's `stream` (with `tag` or `list`) is subscribed at once; then the client sends
`{"type": "subscribe", "stream": "hashtag", "tag": "团购"}` and `{"type": "unsubscribe", ...}`. Each
event is a text message `{"stream": ["hashtag", "团购"], "event": "update", "payload": "<Status JSON>"}`,
whose payload is the very text the server-sent event stream carries (`streaming_frames`); an event
without one (`filters_changed`) has no `payload` key, as Mastodon's JSON leaves it out. A message
that cannot be honoured is answered `{"error": ..., "status": 4xx, "code": ...}`, and the connection
stays open.

A connection is one stream of the process's hub (`streaming_asgi`): it counts once against
STREAMING_MAX_STREAMS whatever it subscribes to (at most MAX_SUBSCRIPTIONS streams), and shares the
hub's broker listener, the queue's bound and the renderers. The server pings it every
STREAMING_HEARTBEAT_SECONDS and drops a client that does not answer within as long again
(`websocket_options`). A reader who cannot keep up is closed with 1013 (try again later), one whose
token is revoked (or whose account is deactivated) while it is open with 1008 (policy violation), and
every connection is closed with 1001 (going away) when the server shuts down.
"""

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import parse_qs

import orjson
from django.conf import settings

from weituan.core.errors import ServiceError
from weituan.mastodon.streaming_asgi import (
    END,
    STREAM_WRITE_SECONDS,
    STREAMING_PREFIX,
    Receive,
    Scope,
    Send,
    Stream,
    bearer_token,
    first_of,
    frames_of,
    hub,
    off_loop,
    refusal_headers,
    request_of,
    too_many_streams,
)
from weituan.mastodon.streaming_frames import (
    STREAM_PATHS,
    Channel,
    Reader,
    channel_of,
    error_body,
    stream_allowed,
    stream_open,
    stream_reader,
)

log = logging.getLogger(__name__)

# Streams one connection may listen to at once.
MAX_SUBSCRIPTIONS = 32
# The largest message a client may send (a subscription is a few dozen bytes).
CLIENT_MESSAGE_BYTES = 4096
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008  # also: its token was revoked while it was open
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


def websocket_options() -> dict[str, Any]:
    """uvicorn's WebSocket settings for the streams: the `websockets` implementation, a ping every
    STREAMING_HEARTBEAT_SECONDS, unanswered within as long again drops the client, and small client
    messages."""
    heartbeat = float(settings.STREAMING_HEARTBEAT_SECONDS)
    return {
        "ws": "websockets-sansio",
        "ws_ping_interval": heartbeat,
        "ws_ping_timeout": heartbeat,
        "ws_max_size": CLIENT_MESSAGE_BYTES,
    }


def _token_and_protocol(scope: Scope, query: dict[str, list[str]]) -> tuple[str | None, str | None]:
    """The token the client names, and the subprotocol to accept: the first one it offered, since a
    browser carrying its token there refuses a connection that does not answer with it."""
    offered = [protocol for protocol in scope.get("subprotocols") or [] if protocol]
    protocol = offered[0] if offered else None
    return bearer_token(scope, query) or protocol, protocol


async def _refuse_handshake(scope: Scope, send: Send, exc: ServiceError) -> None:
    """Refuse the upgrade with the JSON answer the event streams give, where the server can send one;
    else by closing (the server answers 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION})
        return
    start = {"type": "websocket.http.response.start", "status": exc.status, "headers": refusal_headers(exc)}
    await send(start)
    await send({"type": "websocket.http.response.body", "body": error_body(exc)})


def _first_stream(scope: Scope, query: dict[str, list[str]]) -> str | None:
    """The stream to subscribe at once: the query's `stream`, else one named by the path
    (/api/v1/streaming/user...). Raises 404 `unknown_stream` for a path naming none."""
    named = first_of(query, "stream")
    if named:
        return named
    rest = scope["path"][len(STREAMING_PREFIX) :].strip("/")
    if not rest:
        return None
    if rest not in STREAM_PATHS:
        raise ServiceError("Unknown stream type", code="unknown_stream", status=404)
    return STREAM_PATHS[rest]


async def websocket_stream(scope: Scope, receive: Receive, send: Send) -> None:
    """Serve a WebSocket connection under /api/v1/streaming, from its handshake to its close."""
    if (await receive())["type"] != "websocket.connect":
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token, protocol = _token_and_protocol(scope, query)
    try:
        first = _first_stream(scope, query)
        reader: Reader = await off_loop(stream_reader, token)
    except ServiceError as exc:
        await _refuse_handshake(scope, send, exc)
        return
    stream = Stream(reader, [], request_of(scope))
    if not await hub.join(stream):
        await _refuse_handshake(scope, send, too_many_streams())
        return
    try:
        await send({"type": "websocket.accept", "subprotocol": protocol})
        connection = _Connection(stream, send)
        if first:
            await connection.subscribe(first, first_of(query, "tag"), first_of(query, "list"))
        await connection.serve(receive)
    except (OSError, _Gone):  # the client went before its first stream was subscribed
        pass
    finally:
        hub.leave(stream)


class _Gone(Exception):
    """The client cannot be written to: it left, or it takes nothing within STREAM_WRITE_SECONDS."""


class _Connection:
    """One open WebSocket: its stream, the client's messages, and the writes (one at a time)."""

    def __init__(self, stream: Stream, send: Send) -> None:
        self.stream = stream
        self._send = send
        self._writing = asyncio.Lock()
        self.client_left = False
        self.stalled = False
        self.failed = False

    async def _write(self, message: dict[str, Any]) -> None:
        text = orjson.dumps(message).decode()
        async with self._writing:
            try:
                await asyncio.wait_for(
                    self._send({"type": "websocket.send", "text": text}), STREAM_WRITE_SECONDS
                )
            except TimeoutError:
                self.stream.dropped = self.stalled = True
                log.info("a streaming reader that stopped reading was dropped")
                raise _Gone from None
            except OSError:  # uvicorn's ClientDisconnected
                self.client_left = True
                raise _Gone from None

    async def _error(self, exc: ServiceError) -> None:
        await self._write({"error": exc.message, "status": exc.status, "code": exc.code, **exc.details})

    async def serve(self, receive: Receive) -> None:
        """Write the stream's events until it ends, reading the client's messages meanwhile; then close
        as the end calls for."""
        listener = asyncio.ensure_future(self._listen(receive))
        listener.add_done_callback(lambda _: self.stream.end())
        try:
            await self._pump()
        except _Gone:
            pass
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if self.client_left or self.stalled:
            return  # nothing can be written: the server closes the connection as the handler returns
        if self.failed:
            code = CLOSE_INTERNAL_ERROR
        elif self.stream.dropped:
            code = CLOSE_TRY_AGAIN_LATER
        elif self.stream.revoked:
            code = CLOSE_POLICY_VIOLATION
        else:
            code = CLOSE_GOING_AWAY
        await self._close(code)

    async def _close(self, code: int) -> None:
        async with self._writing:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                await asyncio.wait_for(self._send({"type": "websocket.close", "code": code}), 1.0)

    async def _pump(self) -> None:
        stream = self.stream
        while True:
            item = await stream.queue.get()
            if item is END:
                return
            for frame in await frames_of(stream, item):
                if frame.channel in stream.channels:  # not unsubscribed meanwhile
                    message: dict[str, Any] = {"stream": frame.channel.names, "event": frame.event}
                    if frame.payload is not None:  # `filters_changed` comes without one, as in Mastodon
                        message["payload"] = frame.payload
                    await self._write(message)

    async def _listen(self, receive: Receive) -> None:
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    self.client_left = True
                    return
                if message["type"] == "websocket.receive":
                    await self._handle(message.get("text"))
        except _Gone:
            return
        except Exception:
            self.failed = True
            log.exception("a streaming client's message could not be handled")

    async def _handle(self, text: str | None) -> None:
        """Act on one client message, answering an error for one that cannot be honoured."""
        try:
            kind, name, tag, list_id = _message_of(text)
            if kind == "subscribe":
                await self.subscribe(name, tag, list_id)
            else:
                self.unsubscribe(name, tag, list_id)
        except ServiceError as exc:
            await self._error(exc)

    async def subscribe(self, name: str, tag: str | None, list_id: str | None) -> None:
        """Listen to one more stream (one listened to already is left as it is)."""
        try:
            channel = channel_of(name, tag, list_id)
            if channel in self.stream.channels:
                return
            if len(self.stream.channels) >= MAX_SUBSCRIPTIONS:
                raise ServiceError(
                    f"A connection listens to at most {MAX_SUBSCRIPTIONS} streams",
                    code="too_many_subscriptions",
                    status=400,
                )
            await off_loop(_subscription_checked, self.stream.reader, channel)
        except ServiceError as exc:
            await self._error(exc)
            return
        self.stream.listen([*self.stream.channels, channel])

    def unsubscribe(self, name: str, tag: str | None, list_id: str | None) -> None:
        """Stop listening to a stream (one not listened to is no error, as in Mastodon)."""
        channel = channel_of(name, tag, list_id)
        self.stream.listen([kept for kept in self.stream.channels if kept != channel])


def _subscription_checked(reader: Reader, channel: Channel) -> None:
    stream_allowed(reader, channel)
    stream_open(reader, channel)


def _message_of(text: str | None) -> tuple[str, str, str | None, str | None]:
    """A client message's type, stream, tag and list; 400 `invalid_message` for anything but a JSON
    object with a `subscribe` or `unsubscribe` type and a stream name."""
    if text is None:
        raise ServiceError("Messages are JSON text, not binary", code="invalid_message", status=400)
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ServiceError("The message is not JSON", code="invalid_message", status=400) from None
    if not isinstance(message, dict):
        raise ServiceError("The message is not a JSON object", code="invalid_message", status=400)
    kind = message.get("type")
    if kind not in ("subscribe", "unsubscribe"):
        raise ServiceError(
            "The message's type is neither subscribe nor unsubscribe", code="invalid_message", status=400
        )
    name = message.get("stream")
    if not isinstance(name, str) or not name:
        raise ServiceError("The message names no stream", code="invalid_message", status=400)
    return kind, name, _param(message, "tag"), _param(message, "list")


def _param(message: dict[str, Any], name: str) -> str | None:
    """A message's `tag` or `list` as text (clients send a list's id as a string or a number); 400
    `invalid_message` for anything else."""
    value = message.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ServiceError(f"The message's {name} is not text", code="invalid_message", status=400)
