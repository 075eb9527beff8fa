"""Live events for the streaming API: published after commit, handed to the streams the processes serve.

An event is a small dict naming what happened by ids (`{"t": "post", "id": ..., "a": author}`); each
stream decides for its own reader whether and how it is shown, with the REST API's rules.

Without REDIS_URL the broker is this process's own: the embedded default serves from one process, with
its task worker a thread in it, so every event is made where the streams are. With REDIS_URL events go
through one pub/sub channel, so a post written by one server process or worker reaches the streams of
every other; a process serving streams listens on the channel from a thread of its own.

Publishing is skipped while nobody streams. In process, that is an empty set of listeners. With Redis,
the processes serving streams keep a key naming the moment until which they are known to be there
(renewed while they listen); a process with no stream of its own reads it at most once a second, so a
stream opened on another process gets events from at most a second after it connected.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from django.db import transaction

from weituan.core.redis import get_redis, redis_enabled, rkey

log = logging.getLogger(__name__)

Event = dict[str, Any]
Listener = Callable[[Event], None]

# How long the "someone streams" key lasts unless renewed, and how often a listening process renews it.
PRESENCE_SECONDS = 60
PRESENCE_RENEW_SECONDS = 20
# How long a process with no stream of its own trusts what it last read of that key.
PRESENCE_RECHECK_SECONDS = 1.0

_lock = threading.Lock()
_listeners: set[Listener] = set()
_presence = {"until": 0.0, "read_at": 0.0}
_relay: "_RedisRelay | None" = None


def _channel() -> str:
    return rkey("stream")


def _presence_key() -> str:
    return rkey("stream", "until")


def streams_listening() -> bool:
    """Whether any stream may want an event now (see the module's docstring for what it costs)."""
    if _listeners:
        return True
    if not redis_enabled():
        return False
    now = time.time()
    if _presence["until"] > now:
        return True
    if now - _presence["read_at"] < PRESENCE_RECHECK_SECONDS:
        return False
    _presence["read_at"] = now
    try:
        raw = get_redis().get(_presence_key())
    except Exception:  # Redis away: nobody can be told anyway
        return False
    _presence["until"] = float(raw) if raw else 0.0
    return _presence["until"] > now


def stream_publish(event: Event) -> None:
    """Hand `event` to every stream once the current transaction commits (at once outside one); nothing
    while nobody streams. A lost event costs a live update, never data, so a failure is only logged."""
    if streams_listening():
        transaction.on_commit(lambda: _send(event))


def _send(event: Event) -> None:
    if not redis_enabled():
        _deliver(event)
        return
    try:
        get_redis().publish(_channel(), orjson.dumps(event))
    except Exception:  # see stream_publish
        log.warning("a streaming event could not be published", exc_info=True)


def _deliver(event: Event) -> None:
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # one listener's failure is not the others'
            log.exception("a streaming listener failed")


def stream_listen(listener: Listener) -> Callable[[], None]:
    """Call `listener` (from any thread: it must be thread-safe) with every event published from now on,
    in any process; returns the call that stops it."""
    global _relay
    with _lock:
        _listeners.add(listener)
        if redis_enabled() and _relay is None:
            _relay = _RedisRelay()
            _relay.start()

    def stop() -> None:
        global _relay
        with _lock:
            _listeners.discard(listener)
            if not _listeners and _relay is not None:
                _relay.stop()
                _relay = None
                # Whether others still stream is read again from the key, not assumed from this
                # process's own presence.
                _presence.update(until=0.0, read_at=0.0)

    return stop


class _RedisRelay(threading.Thread):
    """Reads the channel and hands each event to this process's listeners; keeps the presence key alive
    while it runs. Reconnects after Redis went away (the events meanwhile are lost, as a stream's are
    when it drops)."""

    def __init__(self) -> None:
        super().__init__(name="weituan-stream-relay", daemon=True)
        self._stopping = threading.Event()
        self._subscribed = threading.Event()

    def start(self) -> None:
        super().start()
        # The first stream's events start once the subscription is made, so none published after it
        # connected is missed.
        self._subscribed.wait(timeout=5)

    def stop(self) -> None:
        self._stopping.set()

    def _present(self) -> None:
        until = time.time() + PRESENCE_SECONDS
        get_redis().set(_presence_key(), str(until), ex=PRESENCE_SECONDS)
        _presence["until"] = until

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception:  # Redis away: try again shortly
                log.warning("the streaming relay lost Redis; reconnecting", exc_info=True)
                self._subscribed.set()
                self._stopping.wait(1.0)

    def _listen(self) -> None:
        pubsub = get_redis().pubsub()
        try:
            pubsub.subscribe(_channel())
            # Subscribed once Redis says so: an event published after that reaches this process.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                reply = pubsub.get_message(timeout=0.5)
                if reply is not None and reply.get("type") == "subscribe":
                    break
            self._present()
            self._subscribed.set()
            renewed = time.monotonic()
            while not self._stopping.is_set():
                message = pubsub.get_message(timeout=1.0)
                if self._stopping.is_set():
                    break  # a relay started after this one's stop hands the events on
                if message is not None and message.get("type") == "message":
                    _deliver(orjson.loads(message["data"]))
                if time.monotonic() - renewed > PRESENCE_RENEW_SECONDS:
                    self._present()
                    renewed = time.monotonic()
        finally:
            pubsub.close()
