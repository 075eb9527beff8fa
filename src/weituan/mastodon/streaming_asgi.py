"""Mastodon's streaming API under ASGI: the server-sent event streams under /api/v1/streaming/, and
what they share with the WebSocket (`streaming_websocket`): the hub, the per-stream queue, the threads.

Each stream is a long response on the event loop, costing no thread while it waits. The process's
`StreamHub` listens to the broker once (`core.stream_events`) and offers every event to each of its
streams; a stream renders the ones meant for its reader on the hub's threads (database work, see
`streaming_frames`) and writes them as Mastodon does (`event: update` / `data: <Status JSON>`; an
event without a payload, `filters_changed`, with `data: undefined`), with a `:thump` comment every
STREAMING_HEARTBEAT_SECONDS so proxies and clients know it is alive.

Resources are bounded: at most STREAMING_MAX_STREAMS streams per process (beyond, 503
`too_many_streams`); a stream keeps at most STREAM_QUEUE events waiting, and a reader too slow to take
them (the socket's buffer full, so writes wait) is dropped rather than buffered for; a stream ends when
its client goes, and every stream ends its response when the server shuts down (`streams_end`), so the
server's graceful shutdown is not held up by them.

A stream lives no longer than its token: every STREAMING_HEARTBEAT_SECONDS the hub asks, in one query,
which of its streams' tokens have been revoked (or their user deactivated) since, and ends those
streams (a WebSocket is closed with 1008, policy violation).
"""

import asyncio
import contextlib
import io
import logging
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import OperationalError, close_old_connections

from weituan.accounts.tokens import access_tokens_ended
from weituan.core.errors import ServiceError, Unavailable
from weituan.core.stream_events import Event, stream_listen
from weituan.mastodon.streaming_frames import (
    USER_STREAMS,
    Channel,
    Frame,
    Reader,
    error_body,
    stream_allowed,
    stream_channel,
    stream_frames,
    stream_open,
    stream_reader,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

STREAMING_PREFIX = "/api/v1/streaming"
# Events waiting to be rendered for one stream before its reader counts as too slow and is dropped.
STREAM_QUEUE = 256
# How long one write may wait for a client that stopped reading before the stream is dropped.
STREAM_WRITE_SECONDS = 15.0
END = object()  # what a stream's queue holds last once the stream ended
# The events about one reader (`r`), which no one else's stream takes.
_READERS_OWN = frozenset({"notification", "filters_changed"})
# What the data line of an event without a payload says, as Mastodon's streaming server writes it.
NO_PAYLOAD = "undefined"
_JSON = [(b"content-type", b"application/json; charset=utf-8")]

# How many times an event is rendered before it is given up on, and the wait before the second time
# (twice as long before the third).
RENDER_ATTEMPTS = 3
RENDER_RETRY_SECONDS = 0.05

# Rendering runs here, not on the loop: two threads, each keeping its database connection as the front
# paths' threads do.
_renderers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="weituan-stream")


def _on_thread(work: Callable[..., Any], *args: Any) -> Any:
    close_old_connections()
    try:
        return work(*args)
    finally:
        close_old_connections()


async def off_loop(work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` on the renderers' threads (database work), awaited from the loop."""
    return await asyncio.get_running_loop().run_in_executor(_renderers, _on_thread, work, *args)


class Stream:
    """One client's stream: its reader, what it listens to, and the events waiting for it."""

    def __init__(self, reader: Reader, channels: list[Channel], request: Any) -> None:
        self.reader = reader
        self.request = request
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=STREAM_QUEUE)
        self.ended = False
        self.dropped = False
        self.revoked = False  # ended because its token no longer is live
        self.channels: tuple[Channel, ...] = ()
        self._kinds: frozenset[str] = frozenset()
        self.listen(channels)

    def listen(self, channels: list[Channel]) -> None:
        """Listen to `channels` from now on (a WebSocket's subscriptions change while it is open)."""
        self.channels = tuple(channels)
        names = {channel.name for channel in channels}
        kinds = set()
        if names & set(USER_STREAMS):
            kinds.add("notification")
        if names - {"user:notification"}:
            kinds.update({"post", "edit", "delete"})
        if "user" in names:
            kinds.add("filters_changed")
        self._kinds = frozenset(kinds)

    def offer(self, event: Event) -> None:
        """Queue `event` if it may concern this stream (cheap checks only, on the loop); a stream whose
        queue is full is ended instead, its reader too slow to follow."""
        if self.ended or event.get("t") not in self._kinds:
            return
        if event.get("t") in _READERS_OWN and event.get("r") != self.reader.user_id:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            log.info("a streaming reader too slow to follow was dropped")
            self.end()

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(END)


class StreamHub:
    """The streams this process serves: the cap on them, the one broker listener they share while there
    are any, and their end at shutdown."""

    def __init__(self) -> None:
        self.streams: set[Stream] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._closed_loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._tokens_watch: asyncio.Task[None] | None = None

    async def join(self, stream: Stream) -> bool:
        """Admit `stream`, or False when the process serves its most already or is shutting down."""
        loop = asyncio.get_running_loop()
        if loop is self._closed_loop or len(self.streams) >= settings.STREAMING_MAX_STREAMS:
            return False
        self.streams.add(stream)
        async with self._lock:
            if self._stop_listening is None:
                self._loop = loop
                self._stop_listening = await off_loop(stream_listen, self._from_any_thread)
            if self._tokens_watch is None or self._tokens_watch.done():
                self._tokens_watch = loop.create_task(self._watch_tokens())
        return True

    def leave(self, stream: Stream) -> None:
        self.streams.discard(stream)
        if not self.streams and self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if not self.streams and self._tokens_watch is not None:
            self._tokens_watch.cancel()
            self._tokens_watch = None

    async def _watch_tokens(self) -> None:
        """End the streams whose token was revoked, or whose user was deactivated, since they opened."""
        while self.streams:
            await asyncio.sleep(settings.STREAMING_HEARTBEAT_SECONDS)
            tokens = {stream.reader.token_id for stream in self.streams if not stream.ended}
            tokens.discard(None)
            try:
                ended = await off_loop(access_tokens_ended, tokens)
            except Exception:
                log.exception("the streams' tokens could not be checked")
                continue
            for stream in list(self.streams):
                if stream.reader.token_id in ended:
                    stream.revoked = True
                    stream.end()

    def _from_any_thread(self, event: Event) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._offer, event)

    def _offer(self, event: Event) -> None:
        for stream in list(self.streams):
            stream.offer(event)

    def end_all(self) -> None:
        """End every stream (their responses finish) and admit no more on this loop."""
        self._closed_loop = asyncio.get_running_loop()
        for stream in list(self.streams):
            stream.end()


hub = StreamHub()


def too_many_streams() -> Unavailable:
    """The refusal of a stream beyond STREAMING_MAX_STREAMS."""
    return Unavailable("This server has as many streams open as it serves", code="too_many_streams")


async def streams_end() -> None:
    """End this process's streams; called by the server as it shuts down, before it waits for the open
    responses to finish."""
    hub.end_all()
    for _ in range(50):
        if not hub.streams:
            return
        await asyncio.sleep(0.02)


def bearer_token(scope: Scope, query: dict[str, list[str]]) -> str | None:
    """The token of the `Authorization: Bearer` header, else of the `access_token` query."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
    tokens = query.get("access_token")
    return tokens[0] if tokens else None


def request_of(scope: Scope) -> ASGIRequest:
    """The Django request the REST API would have for this path: statuses render their URLs from it (a
    WebSocket's `ws`/`wss` scheme is the site's `http`/`https`)."""
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    return ASGIRequest({**scope, "type": "http", "method": "GET", "scheme": scheme}, io.BytesIO())


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def refusal_headers(exc: ServiceError) -> list[tuple[bytes, bytes]]:
    """The headers of the JSON answer refusing a stream with `exc`."""
    headers = list(_JSON)
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="Weituan", error="invalid_token"'))
    if isinstance(exc, Unavailable):
        headers += [(k.lower().encode(), str(v).encode()) for k, v in exc.headers().items()]
    return headers


async def _refuse(send: Send, exc: ServiceError) -> None:
    await _answer(send, exc.status, error_body(exc), refusal_headers(exc))


def first_of(query: dict[str, list[str]], name: str) -> str | None:
    """The first value of the query parameter `name`, if given."""
    values = query.get(name)
    return values[0] if values else None


def _opened(scope: Scope) -> tuple[Reader, Channel]:
    """The reader and the stream of an event-stream request, checked (raises ServiceError)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    channel = stream_channel(
        scope["path"][len(STREAMING_PREFIX) + 1 :], first_of(query, "tag"), first_of(query, "list")
    )
    reader = stream_reader(bearer_token(scope, query))
    stream_allowed(reader, channel)
    stream_open(reader, channel)
    return reader, channel


async def event_stream(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request under /api/v1/streaming/: the health check, or a server-sent event stream."""
    path = scope["path"].rstrip("/")
    if scope["method"] not in ("GET", "HEAD"):
        await _refuse(send, ServiceError("Only GET opens a stream", code="method_not_allowed", status=405))
        return
    if path == STREAMING_PREFIX + "/health":
        await _answer(send, 200, b"OK", [(b"content-type", b"text/plain; charset=utf-8")])
        return
    if path == STREAMING_PREFIX:
        refusal = (
            "Open a stream at /api/v1/streaming/<stream> (server-sent events), "
            "or connect a WebSocket to /api/v1/streaming"
        )
        await _refuse(send, ServiceError(refusal, code="stream_path_required", status=400))
        return
    try:
        reader, channel = await off_loop(_opened, scope)
    except ServiceError as exc:
        await _refuse(send, exc)
        return
    stream = Stream(reader, [channel], request_of(scope))
    if not await hub.join(stream):
        await _refuse(send, too_many_streams())
        return
    try:
        await _serve(stream, receive, send)
    finally:
        hub.leave(stream)


class _Stalled(Exception):
    """A write the client has not taken within STREAM_WRITE_SECONDS."""


async def _write(send: Send, body: bytes, *, more: bool = True) -> None:
    try:
        await asyncio.wait_for(
            send({"type": "http.response.body", "body": body, "more_body": more}), STREAM_WRITE_SECONDS
        )
    except TimeoutError:
        raise _Stalled from None


async def _serve(stream: Stream, receive: Receive, send: Send) -> None:
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    watcher = asyncio.ensure_future(_until_disconnect(receive, stream))
    try:
        await _write(send, b":)\n\n")
        await _pump(stream, send)
        if not watcher.done():
            await _write(send, b"", more=False)
    except _Stalled:
        # The client takes nothing (its socket's buffer is full): the response is left unfinished, and
        # the server closes the connection.
        stream.dropped = True
        log.info("a streaming reader that stopped reading was dropped")
    finally:
        watcher.cancel()


async def _pump(stream: Stream, send: Send) -> None:
    """Write the stream's events as they come, a heartbeat when none came for a while, until it ends."""
    while True:
        try:
            item = await asyncio.wait_for(stream.queue.get(), settings.STREAMING_HEARTBEAT_SECONDS)
        except TimeoutError:
            await _write(send, b":thump\n\n")
            continue
        if item is END:
            return
        for frame in await frames_of(stream, item):
            data = NO_PAYLOAD if frame.payload is None else frame.payload
            await _write(send, f"event: {frame.event}\ndata: {data}\n\n".encode())


async def frames_of(stream: Stream, event: Event) -> list[Frame]:
    """The frames `event` makes on the stream's channels, rendered off the loop; none for an event that
    fails to render (it costs that event only)."""
    try:
        frames: list[Frame] = await off_loop(
            _rendered, stream.reader, list(stream.channels), event, stream.request
        )
    except Exception:
        log.exception("a streaming event could not be rendered")
        return []
    return frames


def _rendered(reader: Reader, channels: list[Channel], event: Event, request: Any) -> list[Frame]:
    """`stream_frames`, tried again after a database error that may pass: SQLite in shared-cache mode
    (the tests' in-memory database) refuses to read a table another connection is writing, and streams
    render while the site writes. Rendering only reads, so trying again is safe."""
    for attempt in range(1, RENDER_ATTEMPTS):
        try:
            return stream_frames(reader, channels, event, request)
        except OperationalError:
            close_old_connections()  # a connection the error left unusable is not used again
            time.sleep(RENDER_RETRY_SECONDS * attempt)
    return stream_frames(reader, channels, event, request)


async def _until_disconnect(receive: Receive, stream: Stream) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.end()
            return


# Seconds a server of several processes gives open responses to finish at shutdown before cancelling
# them (the streams among them end then); a single process ends its streams at once (`StreamingServer`).
SHUTDOWN_GRACE_SECONDS = 5


class StreamingServer(uvicorn.Server):
    """uvicorn's server, ending this process's streams as it starts to shut down: uvicorn waits for every
    open response to finish, which a stream would not do by itself."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await streams_end()
        await super().shutdown(sockets)
