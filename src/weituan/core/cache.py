"""The site's cache on Redis, which keeps answering from the database while Redis cannot be reached."""

import logging
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

from weituan.core.redis import REDIS_UNREACHABLE, unreachable_logged

log = logging.getLogger(__name__)


def _unreachable(operation: str, exc: Exception) -> None:
    unreachable_logged(log, f"cache {operation}s skipped", exc)


class RedisCacheOrMiss(RedisCache):
    """Django's Redis cache, where everything cached is a copy of what the database holds (trends, short
    link and API key lookups, the gate of the last-seen stamp). While Redis cannot be reached a read is
    a miss and a write is skipped, so the pages that only cache keep answering, from the database,
    instead of failing. `add` answers False (nothing was added), so a caller gating work on it skips
    the work. Deletes and counters still raise: an entry that must go (a revoked key's) is never left
    behind without the caller knowing."""

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("read", exc)
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        try:
            return super().get_many(keys, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("read", exc)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("read", exc)
            return False

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("write", exc)

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        try:
            return super().set_many(data, timeout, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("write", exc)
            return list(data)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("write", exc)
            return False

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().touch(key, timeout, version)
        except REDIS_UNREACHABLE as exc:
            _unreachable("write", exc)
            return False
