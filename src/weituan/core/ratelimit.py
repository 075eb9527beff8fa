"""Fixed-window rate limits: Redis INCR when configured (and reachable), else a counter row in the database."""

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection

from weituan.core.errors import RateLimited
from weituan.core.models import RateLimitWindow
from weituan.core.redis import REDIS_UNREACHABLE, get_redis, redis_enabled, rkey, unreachable_logged
from weituan.core.rows import fetch_rows

log = logging.getLogger(__name__)

# Count one request in the window's key, which expires shortly after the window ends; one round trip.
_HIT_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return count
"""
# The client the script was registered with, and the script.
_script: list[Any] = [None, None]


def rate_limit_hit(key: str, *, limit: int, window_seconds: int = 60) -> int:
    """Count one request for `key`; raise RateLimited once the window holds more than `limit`."""
    now = int(time.time())
    window_start = now - now % window_seconds
    count = None
    if redis_enabled():
        try:
            count = _redis_hit(key, window_start, window_seconds)
        except REDIS_UNREACHABLE as exc:
            # Counted in the database's rows while Redis is away, so writes go on limited rather than
            # refused (a window split across the two counts a little more leniently).
            unreachable_logged(log, "rate limits counted in the database", exc)
    if count is None:
        count = _db_hit(key, window_start)
    if count > limit:
        reset_at = window_start + window_seconds
        retry = reset_at - now
        raise RateLimited(
            f"Too many requests; try again in {retry} s", limit=limit, reset_at=reset_at, retry_after=retry
        )
    return count


def _redis_hit(key: str, window_start: int, window_seconds: int) -> int:
    client = get_redis()
    if client is not _script[0]:
        _script[:] = [client, client.register_script(_HIT_LUA)]
    return int(_script[1](keys=[rkey("rl", key, window_start)], args=[window_seconds + 5]))


_HIT_SQL: dict[str, str] = {}


def _hit_sql() -> str:
    sql = _HIT_SQL.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        rows, name, start, count = (
            quote(n) for n in (RateLimitWindow._meta.db_table, "key", "window_start", "count")
        )
        sql = _HIT_SQL[connection.vendor] = (
            f"INSERT INTO {rows} ({name}, {start}, {count}) VALUES (%s, %s, 1)"  # noqa: S608
            f" ON CONFLICT ({name}, {start}) DO UPDATE SET {count} = {rows}.{count} + 1 RETURNING {count}"
        )
    return sql


def _db_hit(key: str, window_start: int) -> int:
    """Count one request in the window's row and return the count: one upsert, atomic on its own, so it
    needs no transaction of its own (inside the caller's, it commits with it). On SQLite it runs while
    the post's write lock is held, so its text is made once."""
    return int(fetch_rows(_hit_sql(), [key, window_start])[0][0])


def user_writes_hit(user: Any) -> None:
    """Count one write (post, like, repost, comment, delete...) of a user against their per-minute
    budget, shared by the API and the pages."""
    rate_limit_hit(f"writes:{user.pk}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)


def user_relations_hit(user: Any) -> None:
    """Count one change of a user's relations (follow, block, mute...) against its per-minute budget,
    shared by the API and the pages."""
    rate_limit_hit(f"relations:{user.pk}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)
