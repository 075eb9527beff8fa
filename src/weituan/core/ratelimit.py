"""Fixed-window rate limits: Redis INCR when configured, else a counter row in the database."""

import time

from django.db import IntegrityError, transaction
from django.db.models import F

from weituan.core.errors import RateLimited
from weituan.core.models import RateLimitWindow
from weituan.core.redis import get_redis, redis_enabled, rkey


def rate_limit_hit(key: str, *, limit: int, window_seconds: int = 60) -> int:
    """Count one request for `key`; raise RateLimited once the window holds more than `limit`."""
    now = int(time.time())
    window_start = now - now % window_seconds
    if redis_enabled():
        client = get_redis()
        name = rkey("rl", key, window_start)
        pipe = client.pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds + 5)
        count = int(pipe.execute()[0])
    else:
        count = _db_hit(key, window_start)
    if count > limit:
        retry = window_start + window_seconds - now
        raise RateLimited(f"Too many requests; try again in {retry} s", retry_after=retry)
    return count


def _db_hit(key: str, window_start: int) -> int:
    with transaction.atomic():
        updated = RateLimitWindow.objects.filter(key=key, window_start=window_start).update(
            count=F("count") + 1
        )
        if not updated:
            try:
                with transaction.atomic():
                    RateLimitWindow.objects.create(key=key, window_start=window_start, count=1)
                    return 1
            except IntegrityError:
                RateLimitWindow.objects.filter(key=key, window_start=window_start).update(
                    count=F("count") + 1
                )
        row = RateLimitWindow.objects.get(key=key, window_start=window_start)
        return row.count
