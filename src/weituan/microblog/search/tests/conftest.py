"""Fixtures of the search tests."""

from collections.abc import Iterator
from typing import Any

import pytest

from weituan.microblog.search import store


@pytest.fixture(autouse=True)
def _empty_post_index(request: Any) -> Iterator[None]:
    """Start from an empty index: the raw index table is not among the tables a transactional test
    flushes, so rows left by an earlier live-server test would otherwise still be there."""
    if request.node.get_closest_marker("django_db"):
        store.documents_clear()
    yield
