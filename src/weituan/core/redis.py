"""The shared Redis client, present only when REDIS_URL is set."""

import threading
from collections.abc import Sequence
from typing import Any

import redis as redis_lib
from django.conf import settings
from redis.commands.core import Script
from redis.exceptions import NoScriptError

_lock = threading.Lock()
_client: redis_lib.Redis | None = None


def redis_enabled() -> bool:
    return bool(settings.REDIS_URL)


def get_redis() -> redis_lib.Redis:
    """The process-wide client (thread-safe, pooled). Call only when `redis_enabled()`."""
    global _client
    if not settings.REDIS_URL:
        raise RuntimeError("REDIS_URL is not set")
    if _client is None:
        with _lock:
            if _client is None:
                _client = redis_lib.Redis.from_url(settings.REDIS_URL, max_connections=256)
    return _client


def rkey(*parts: object) -> str:
    """A Redis key under the instance prefix, e.g. rkey('tl', 42) -> 'wt:tl:42'."""
    return settings.REDIS_KEY_PREFIX + ":".join(str(part) for part in parts)


def scripts_run(calls: Sequence[tuple[Script, Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Run registered scripts (script, keys, args) in one round trip, by hash, and return their replies
    in order. A server that does not hold a script yet (a restart, a flush) gets them all loaded and
    the calls sent once more. A script's own error is raised, as from a single call."""
    for attempt in (1, 2):
        pipe = get_redis().pipeline(transaction=False)
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        if attempt == 1 and any(isinstance(reply, NoScriptError) for reply in replies):
            for script, _, _ in calls:
                get_redis().script_load(script.script)
            continue
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return list(replies)
    raise AssertionError("unreachable")
