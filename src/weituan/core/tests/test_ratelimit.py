"""Fixed-window write limits, counted in Redis when the run has one and in the database otherwise."""

import os
from typing import Any

import pytest

from weituan.core.errors import RateLimited
from weituan.core.models import RateLimitWindow
from weituan.core.ratelimit import rate_limit_hit
from weituan.core.redis import get_redis, rkey

pytestmark = pytest.mark.django_db

STORES = ["database", "redis"] if os.environ.get("REDIS_URL") else ["database"]


@pytest.fixture(params=STORES)
def store(request: Any, settings: Any) -> str:
    if request.param == "database":
        settings.REDIS_URL = None
    else:
        get_redis().delete(*get_redis().keys(rkey("rl", "test:*")) or ["-"])
    return str(request.param)


def test_the_window_allows_the_limit_then_refuses(store: str) -> None:
    assert [rate_limit_hit("test:alice", limit=3) for _ in range(3)] == [1, 2, 3]
    with pytest.raises(RateLimited) as refused:
        rate_limit_hit("test:alice", limit=3)
    assert 0 < int(str(refused.value.details["retry_after"])) <= 60
    assert rate_limit_hit("test:bob", limit=3) == 1  # each key has its own window
    if store == "database":
        assert sorted(RateLimitWindow.objects.values_list("key", "count")) == [
            ("test:alice", 4),
            ("test:bob", 1),
        ]
    else:
        (name,) = get_redis().keys(rkey("rl", "test:alice", "*"))
        assert int(get_redis().get(name) or 0) == 4
        assert 0 < get_redis().ttl(name) <= 65
