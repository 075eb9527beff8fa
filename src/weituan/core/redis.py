"""The shared Redis client, present only when REDIS_URL is set."""

import threading

import redis as redis_lib
from django.conf import settings

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
