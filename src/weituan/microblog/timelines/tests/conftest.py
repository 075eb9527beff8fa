"""Fixtures for the timeline tests: the store backend under test and a few people who read their timeline."""

import os
from collections.abc import Callable
from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Post
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create
from weituan.microblog.timelines.store import Bounds, timeline_store

# The database backend is always tested; the Redis one too when the run has a Redis server.
BACKENDS = ["db", "redis"] if os.environ.get("REDIS_URL") else ["db"]


@pytest.fixture(params=BACKENDS)
def backend(request: Any, settings: Any) -> str:
    """Runs the test once per available timeline store."""
    if request.param == "db":
        settings.REDIS_URL = None
    return str(request.param)


@pytest.fixture
def stored(backend: str) -> Callable[[Any], list[int]]:
    """stored(user) -> the post ids in the user's stored home timeline (None-safe: [] when not built)."""

    def read(user: Any) -> list[int]:
        entries = timeline_store().read(user.pk, Bounds(), 10_000)
        return [entry.post_id for entry in entries or []]

    return read


@pytest.fixture
def post_as(run_on_commit: Any) -> Callable[..., Post]:
    """post_as(user, text) publishes and runs the fan-out (tasks run inline when the write commits)."""

    def publish(user: Any, text: str = "hello", **kwargs: Any) -> Post:
        with run_on_commit():
            return post_create(author=user, text=text, **kwargs)

    return publish


@pytest.fixture
def repost_as(run_on_commit: Any) -> Callable[..., Post]:
    def forward(user: Any, post: Post, comment: str = "") -> Post:
        with run_on_commit():
            return repost_create(reposter=user, post_id=post.id, comment=comment)

    return forward


@pytest.fixture
def follow(run_on_commit: Any) -> Callable[[Any, Any], None]:
    def make(follower: Any, followee: Any) -> None:
        with run_on_commit():
            follow_create(follower=follower, followee_id=followee.pk)

    return make


@pytest.fixture
def people(db: Any) -> Callable[[int], list[Any]]:
    def create(count: int, prefix: str = "reader") -> list[Any]:
        return [make_user(f"{prefix}{index}") for index in range(count)]

    return create


@pytest.fixture
def readers_of(people: Any, follow: Any) -> Callable[[Any, int], list[Any]]:
    """readers_of(author, count) -> that many new people following `author`, each having read their
    home timeline (so the fan-out delivers to them)."""
    from weituan.microblog.timelines.queries import home_timeline_ids

    def make(author: Any, count: int) -> list[Any]:
        readers = people(count)
        for reader in readers:
            follow(reader, author)
            home_timeline_ids(reader.pk)
        return readers

    return make
