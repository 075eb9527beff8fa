"""Every change to a reader's keyword filters is told to their streams once it commits (`filters_changed`),
once per change whatever it touched; a refused change tells nothing."""

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.stream_events import Event, stream_listen, stream_publish
from weituan.microblog.services import filters as services
from weituan.microblog.services.filters import KeywordChange
from weituan.microblog.services.posts import post_create

_END = {"t": "end"}


@pytest.fixture
def heard() -> Iterator[list[Event]]:
    """The events published while the test runs, as the streams hear them (through Redis when set)."""
    events: list[Event] = []
    stop = stream_listen(events.append)
    try:
        yield events
    finally:
        stop()


def _told(heard: list[Event], run_on_commit: Any, change: Callable[[], Any]) -> list[Event]:
    """The events published for `change`: none before its transaction commits, the rest after."""
    heard.clear()
    with run_on_commit():
        change()
        assert heard == []  # nothing is told before the change commits
        stream_publish(_END)
    deadline = time.monotonic() + 10
    while _END not in heard:
        assert time.monotonic() < deadline, "the events did not come"
        time.sleep(0.01)
    return heard[: heard.index(_END)]


def test_each_change_to_the_filters_is_told_once_to_the_owners_streams(
    heard: list[Event], run_on_commit: Any, shopper: Any, outsider: Any
) -> None:
    once = [{"t": "filters_changed", "r": shopper.pk}]
    post = post_create(author=outsider, text="周末团购")
    made: dict[str, Any] = {}

    def create() -> None:
        made["filter"] = services.filter_create(
            owner=shopper, title="屏蔽", contexts=["home"], keywords=[("剧透", True)]
        )

    assert _told(heard, run_on_commit, create) == once
    row = made["filter"]
    first = row.keywords.all()[0]
    # A change of the filter and of its keywords at once is one change.
    assert (
        _told(
            heard,
            run_on_commit,
            lambda: services.filter_update(
                owner=shopper,
                filter_id=row.id,
                title="改名",
                action="hide",
                keywords=[KeywordChange(id=first.id, keyword="结局"), KeywordChange(keyword="sale")],
            ),
        )
        == once
    )

    def keyword_add() -> None:
        made["keyword"] = services.filter_keyword_add(
            owner=shopper, filter_id=row.id, keyword="团购", whole_word=False
        )

    assert _told(heard, run_on_commit, keyword_add) == once
    keyword_id = made["keyword"].id
    assert (
        _told(
            heard,
            run_on_commit,
            lambda: services.filter_keyword_update(owner=shopper, keyword_id=keyword_id, keyword="拼团"),
        )
        == once
    )
    assert (
        _told(
            heard, run_on_commit, lambda: services.filter_keyword_delete(owner=shopper, keyword_id=keyword_id)
        )
        == once
    )

    def status_add() -> None:
        made["status"] = services.filter_status_add(owner=shopper, filter_id=row.id, post_id=post.id)

    assert _told(heard, run_on_commit, status_add) == once
    status_id = made["status"].id
    assert (
        _told(
            heard,
            run_on_commit,
            lambda: services.filter_status_delete(owner=shopper, filter_status_id=status_id),
        )
        == once
    )

    # Mastodon's v1 filters are changes to the same filters.
    def v1_create() -> None:
        made["v1"] = services.filter_v1_create(
            owner=shopper, phrase="广告", contexts=["home"], hide=False, whole_word=True, expires_in=None
        )

    assert _told(heard, run_on_commit, v1_create) == once
    v1_id = made["v1"].id
    assert (
        _told(
            heard,
            run_on_commit,
            lambda: services.filter_v1_update(
                owner=shopper, keyword_id=v1_id, phrase="推广", contexts=None, hide=True, whole_word=None
            ),
        )
        == once
    )
    assert (
        _told(heard, run_on_commit, lambda: services.filter_v1_delete(owner=shopper, keyword_id=v1_id))
        == once
    )

    # A refused change tells nothing: someone else's filter, a bad context.
    def refused() -> None:
        with pytest.raises(NotFound):
            services.filter_update(owner=outsider, filter_id=row.id, title="我的了")
        with pytest.raises(NotFound):
            services.filter_delete(owner=outsider, filter_id=row.id)
        with pytest.raises(ValidationFailed):
            services.filter_create(owner=shopper, title="x", contexts=["everywhere"], keywords=[("x", True)])

    assert _told(heard, run_on_commit, refused) == []
    assert (
        _told(heard, run_on_commit, lambda: services.filter_delete(owner=shopper, filter_id=row.id)) == once
    )
