"""Fixtures of the Mastodon API tests: a live ASGI server for the streaming tests."""

from collections.abc import Iterator
from typing import Any

import pytest

from weituan.mastodon.tests.streaming_client import Served, asgi_server


@pytest.fixture
def served(settings: Any) -> Iterator[Served]:
    """The ASGI application on uvicorn on loopback, with a heartbeat short enough to be seen in a test."""
    settings.STREAMING_HEARTBEAT_SECONDS = 0.3
    with asgi_server() as running:
        yield running
