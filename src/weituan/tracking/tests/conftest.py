"""Fixtures of the tracking tests: an empty analytics store per test, and an ingestion API key."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache

from weituan.tracking.buffer import write_buffer
from weituan.tracking.links_cache import local_links
from weituan.tracking.services.events import _click_channel, _landing_channel
from weituan.tracking.services.ingest import ingest_memory_clear
from weituan.tracking.store import analytics_store

TABLES = ("events", "first_touch", "identities")


@pytest.fixture(autouse=True)
def store() -> Iterator[Any]:
    """The process's analytics store (chDB under the test data dir), emptied before each test."""
    write_buffer().flush()
    current = analytics_store()
    for table in TABLES:
        current.execute(f"TRUNCATE TABLE {table}")
    ingest_memory_clear()
    local_links.clear()
    _landing_channel.cache_clear()
    _click_channel.cache_clear()
    if not settings.REDIS_URL:
        cache.clear()
    yield current
    write_buffer().flush()


@pytest.fixture
def site_key(db: Any) -> str:
    from weituan.tracking.services.keys import api_key_issue

    return api_key_issue(name="小店官网").key


def count(sql: str, **params: Any) -> int:
    return int(analytics_store().scalar(sql, params) or 0)
