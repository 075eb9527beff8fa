"""Fan-out of a burst of posts together (`fanout_deliver_many`), on both stores: each post ends as its own
`fanout_deliver` would leave it, in a fixed handful of statements for the whole burst."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.core.redis import get_redis
from weituan.microblog.models import Mute
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.timelines import fanout
from weituan.microblog.timelines.authors import author_key
from weituan.microblog.timelines.fanout import fanout_deliver_many, fanout_withdraw
from weituan.microblog.timelines.models import FanoutJob, TimelineState
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db


def _jobs(*posts: Any) -> list[tuple[str, int, int] | None]:
    found = {job.post_id: (job.state, job.cursor, job.delivered) for job in FanoutJob.objects.all()}
    return [found.get(post.id) for post in posts]


def test_a_burst_reaches_the_same_timelines_as_one_post_at_a_time(
    backend: str, merchant: Any, shopper: Any, people: Any, follow: Any, stored: Any
) -> None:
    active, muting, inactive = people(3)
    for reader in (active, muting, inactive):
        follow(reader, merchant)
    follow(active, shopper)
    Mute.objects.create(muter=muting, muted=merchant)
    for user in (active, muting, inactive, merchant):
        home_timeline_ids(user.pk)
    TimelineState.objects.filter(user_id=inactive.pk).update(last_read_at=timezone.now() - timedelta(days=31))
    first = post_create(author=merchant, text="一团")
    by_shopper = post_create(author=shopper, text="二团")
    forward = repost_create(reposter=shopper, post_id=first.id, comment="转")
    comment = comment_create(author=merchant, post_id=by_shopper.id, text="评论")
    gone = post_create(author=merchant, text="删了")
    post_delete(actor=merchant, post_id=gone.id)
    resumed = post_create(author=merchant, text="续")
    FanoutJob.objects.create(post_id=resumed.id, author_id=merchant.pk, state="delivering", cursor=0)
    finished = post_create(author=merchant, text="早送完")
    FanoutJob.objects.create(post_id=finished.id, author_id=merchant.pk, state="delivered")
    FanoutJob.objects.filter(post_id=gone.id).delete()

    written = fanout_deliver_many(
        post_ids=[first.id, by_shopper.id, forward.id, comment.id, gone.id, resumed.id, finished.id, first.id]
    )

    # The merchant reads their timeline, so sees their own posts; the muting and inactive readers get
    # nothing; the comment, the deleted post and the finished job reach nobody.
    assert written == {
        first.id: 2,
        by_shopper.id: 1,
        forward.id: 1,
        comment.id: 0,
        gone.id: 0,
        resumed.id: 2,
        finished.id: 0,
    }
    assert stored(active) == [resumed.id, forward.id, by_shopper.id, first.id]
    assert stored(merchant) == [resumed.id, first.id]
    assert stored(muting) == stored(inactive) == stored(shopper) == []
    assert _jobs(first, by_shopper, forward, comment, gone, resumed, finished) == [
        ("delivered", active.pk, 1),
        ("delivered", active.pk, 1),
        ("delivered", active.pk, 1),
        None,
        None,
        ("delivered", active.pk, 1),
        ("delivered", 0, 0),
    ]
    # A second run finds every job finished and writes nothing.
    assert set(fanout_deliver_many(post_ids=[first.id, by_shopper.id, forward.id]).values()) == {0}
    assert stored(active) == [resumed.id, forward.id, by_shopper.id, first.id]


def test_high_follower_authors_are_skipped_as_alone(
    backend: str, merchant: Any, shopper: Any, people: Any, follow: Any, stored: Any, settings: Any
) -> None:
    readers = people(2)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    follow(readers[0], shopper)
    settings.FANOUT_FOLLOWER_THRESHOLD = 1
    loud = post_create(author=merchant, text="大V")
    quiet = post_create(author=shopper, text="小号")

    fanout_deliver_many(post_ids=[loud.id, quiet.id])

    assert [stored(reader) for reader in readers] == [[quiet.id], []]
    assert _jobs(loud, quiet) == [("skipped", 0, 0), ("delivered", readers[0].pk, 1)]


def test_a_post_withdrawn_while_delivering_is_taken_back_out(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any
) -> None:
    readers = people(2)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    kept = post_create(author=merchant, text="留")
    doomed = post_create(author=merchant, text="删")
    followers_of = fanout.active_followers_of

    def deleted_meanwhile(author_ids: Any, **how: Any) -> Any:
        found = followers_of(author_ids, **how)
        fanout_withdraw(post_id=doomed.id, author_id=merchant.pk)
        return found

    monkeypatch.setattr(fanout, "active_followers_of", deleted_meanwhile)
    fanout_deliver_many(post_ids=[kept.id, doomed.id])

    assert [stored(reader) for reader in readers] == [[kept.id], [kept.id]]
    assert _jobs(kept, doomed) == [("delivered", readers[1].pk, 2), ("withdrawn", 0, 0)]


def test_a_job_made_meanwhile_goes_on_from_where_it_stands(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any
) -> None:
    readers = people(3)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    post = post_create(author=merchant, text="并发")
    starts_of = fanout._delivery_starts

    def other_run_started(post_ids: Any) -> Any:
        found = starts_of(post_ids)
        # Another run made the job and delivered to the first reader after this one read the start.
        FanoutJob.objects.get_or_create(
            post_id=post.id,
            defaults={"author_id": merchant.pk, "state": "delivering", "cursor": readers[0].pk},
        )
        return found

    monkeypatch.setattr(fanout, "_delivery_starts", other_run_started)
    written = fanout_deliver_many(post_ids=[post.id])

    assert written == {post.id: 2}
    assert [stored(reader) for reader in readers] == [[], [post.id], [post.id]]
    assert _jobs(post) == [("delivered", readers[2].pk, 2)]


def test_a_burst_costs_a_fixed_number_of_statements(
    backend: str,
    merchant: Any,
    shopper: Any,
    people: Any,
    follow: Any,
    django_assert_num_queries: Any,
    settings: Any,
) -> None:
    settings.TIMELINE_CAP = 10**12  # the database store's occasional trim never falls due
    readers = people(3)
    for reader in readers:
        follow(reader, merchant)
        follow(reader, shopper)
        home_timeline_ids(reader.pk)
    posts = [post_create(author=author, text=f"第{n}团") for n in range(4) for author in (merchant, shopper)]
    # Start, jobs, followers, finish; the database store adds one INSERT of the eight posts' entries, in
    # a transaction of its own (a savepoint and its release inside the test's).
    expected = 4 + (3 if backend == "db" else 0)
    with django_assert_num_queries(expected):
        fanout_deliver_many(post_ids=[post.id for post in posts])
    assert set(FanoutJob.objects.values_list("state", "delivered")) == {("delivered", 3)}
    if backend == "redis":
        # Only an index that exists (a high-follower author's, made on read) receives the post.
        assert get_redis().exists(author_key(merchant.pk)) == 0
