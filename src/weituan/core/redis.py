"""The shared Redis client, present only when REDIS_URL is set."""

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import hiredis
import redis as redis_lib
from django.conf import settings
from redis import exceptions as redis_errors
from redis.commands.core import Script
from redis.exceptions import NoScriptError

_lock = threading.Lock()
_clients: dict[str, redis_lib.Redis] = {}

# What a Redis that cannot be reached raises: down, restarting (still loading), or not answering in time.
# A request meeting one is answered 503 `unavailable` (see weituan.api), not as a server error.
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (redis_errors.ConnectionError, redis_errors.TimeoutError)


# An outage is logged at most once per this many seconds per kind of work and process, not per request.
UNREACHABLE_LOG_EVERY = 10.0
_unreachable_logged_at: dict[str, float] = {}


def unreachable_logged(logger: logging.Logger, what: str, exc: Exception) -> None:
    """Warn that Redis could not be reached for `what` (and what was done instead), at most once every
    UNREACHABLE_LOG_EVERY seconds for the same `what`."""
    now = time.monotonic()
    if now - _unreachable_logged_at.get(what, -UNREACHABLE_LOG_EVERY) >= UNREACHABLE_LOG_EVERY:
        _unreachable_logged_at[what] = now
        logger.warning("Redis unreachable (%s): %s", exc, what)


def redis_enabled() -> bool:
    return bool(settings.REDIS_URL)


def get_redis() -> redis_lib.Redis:
    """The process-wide client of REDIS_URL (thread-safe, pooled). Call only when `redis_enabled()`."""
    url = str(settings.REDIS_URL or "")
    if not url:
        raise RuntimeError("REDIS_URL is not set")
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis_lib.Redis.from_url(url, max_connections=256)
    return client


def rkey(*parts: object) -> str:
    """A Redis key under the instance prefix, e.g. rkey('tl', 42) -> 'wt:tl:42'."""
    return settings.REDIS_KEY_PREFIX + ":".join(str(part) for part in parts)


def scripts_run(
    calls: Sequence[tuple[Script, Sequence[Any], Sequence[Any]]], *, errors: bool = False
) -> list[Any]:
    """Run registered scripts (script, keys, args) in one round trip, by hash, on the client they were
    registered with, and return their replies in order. A server that does not hold a script yet (a
    restart, a flush) gets them loaded and the calls sent once more. A script's own error is raised,
    as from a single call (with `errors`, returned in its call's place, the other replies kept). (redis-py's own pipeline of scripts asks the server whether it holds them,
    a round trip more, on every run.) A connection dropped mid-call is retried once on a fresh one, so
    only scripts that may safely run twice belong here (reads, and adds of the same members)."""
    if not calls:
        return []
    replies = _by_hash(calls)
    if any(isinstance(reply, NoScriptError) for reply in replies):
        for script in {script.sha: script for script, _, _ in calls}.values():
            script.registered_client.script_load(script.script)
        replies = _by_hash(calls)
    if not errors:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    return replies


def _by_hash(calls: Sequence[tuple[Script, Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Send the calls as EVALSHA commands in one write on one pooled connection and read every reply,
    an error reply kept in its place. Written against the connection itself: the client's pipeline
    (and its command path) cost about three times the round trip's own CPU on a home read. A dropped
    connection is retried once on a fresh one, as the client retries (the scripts sent this way are
    idempotent)."""
    client: redis_lib.Redis = calls[0][0].registered_client  # type: ignore[assignment]  # never a cluster
    pool = client.connection_pool
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls]
    packed = _packed(commands)
    for attempt in (1, 2):
        connection = pool.get_connection()
        try:
            connection.send_packed_command(
                [packed] if packed is not None else connection.pack_commands(commands)
            )
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis_errors.ResponseError as error:
                    replies.append(error)
            return replies
        except (redis_errors.ConnectionError, redis_errors.TimeoutError):
            connection.disconnect()
            if attempt == 2:
                raise
        except BaseException:
            connection.disconnect()  # replies may be left unread on it
            raise
        finally:
            pool.release(connection)
    raise AssertionError("unreachable")


_PLAIN = (str, bytes, int)


def _packed(commands: Sequence[tuple[Any, ...]]) -> bytes | None:
    """The commands in the Redis protocol when every argument is text, bytes or an integer (written
    as the client's encoder writes them, UTF-8 and decimal); None for anything else, which the
    connection's own packer writes (or refuses)."""
    for command in commands:
        for argument in command:
            if type(argument) not in _PLAIN:
                return None
    return b"".join(hiredis.pack_command(command) for command in commands)
