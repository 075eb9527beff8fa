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
    """Run registered scripts (script, keys, args) in one round trip, by hash, on the client they were
    registered with, and return their replies in order. A server that does not hold a script yet (a
    restart, a flush) gets them loaded and the calls sent once more. A script's own error is raised,
    as from a single call. (redis-py's own pipeline of scripts asks the server whether it holds them,
    a round trip more, on every run.)"""
    if not calls:
        return []
    replies = _by_hash(calls)
    if any(isinstance(reply, NoScriptError) for reply in replies):
        for script in {script.sha: script for script, _, _ in calls}.values():
            script.registered_client.script_load(script.script)
        replies = _by_hash(calls)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _by_hash(calls: Sequence[tuple[Script, Sequence[Any], Sequence[Any]]]) -> list[Any]:
    pipe = calls[0][0].registered_client.pipeline(transaction=False)
    for script, keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    return list(pipe.execute(raise_on_error=False))
