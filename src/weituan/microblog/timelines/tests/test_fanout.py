"""Fan-out on write, on both stores: active followers only, idempotent, capped, threshold authors merged."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.core.redis import get_redis
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_delete
from weituan.microblog.timelines.fanout import fanout_deliver, fanout_withdraw
from weituan.microblog.timelines.models import FanoutJob, TimelineEntry, TimelineState
from weituan.microblog.timelines.queries import home_timeline_ids
from weituan.microblog.timelines.store import home_key

pytestmark = pytest.mark.django_db


def test_post_reaches_active_followers_only(
    backend: str, merchant: Any, people: Any, follow: Any, post_as: Any, stored: Any
) -> None:
    active, inactive, never = people(3)
    for reader in (active, inactive, never):
        follow(reader, merchant)
    home_timeline_ids(active.pk)
    home_timeline_ids(inactive.pk)
    TimelineState.objects.filter(user_id=inactive.pk).update(last_read_at=timezone.now() - timedelta(days=31))
    post = post_as(merchant, "团购开始")
    assert stored(active) == [post.id]
    assert stored(inactive) == []
    assert stored(never) == []
    job = FanoutJob.objects.get(post_id=post.id)
    assert (job.state, job.delivered, job.cursor) == ("delivered", 1, active.pk)
    # Whoever comes back gets a timeline rebuilt from follows, and is active again.
    assert home_timeline_ids(inactive.pk) == [post.id]
    assert home_timeline_ids(never.pk) == [post.id]
    assert stored(inactive) == [post.id]
    assert TimelineState.objects.get(user_id=inactive.pk).last_read_at > timezone.now() - timedelta(minutes=1)


def test_fanout_retry_does_not_duplicate(
    backend: str, merchant: Any, people: Any, follow: Any, post_as: Any, stored: Any
) -> None:
    readers = people(3)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    post = post_as(merchant)
    assert fanout_deliver(post_id=post.id) == 0
    # A crash mid-delivery: the job is still delivering with its cursor at the first follower.
    FanoutJob.objects.filter(post_id=post.id).update(state="delivering", cursor=readers[0].pk)
    assert fanout_deliver(post_id=post.id) == 2
    for reader in readers:
        assert stored(reader) == [post.id]
    assert FanoutJob.objects.get(post_id=post.id).state == "delivered"


def test_author_sees_own_post_and_repost_reaches_followers(
    backend: str,
    shopper: Any,
    merchant: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
) -> None:
    follow(outsider, shopper)
    follow(shopper, merchant)
    for user in (shopper, merchant, outsider):
        home_timeline_ids(user.pk)
    post = post_as(merchant, "好物推荐")
    repost = repost_as(shopper, post, "买了")
    assert stored(merchant) == [post.id]
    assert stored(shopper) == [repost.id, post.id]
    assert stored(outsider) == [repost.id]


def test_comments_never_enter_home_timelines(
    backend: str, shopper: Any, merchant: Any, follow: Any, post_as: Any, stored: Any, run_on_commit: Any
) -> None:
    follow(shopper, merchant)
    follow(merchant, shopper)
    home_timeline_ids(shopper.pk)
    home_timeline_ids(merchant.pk)
    post = post_as(merchant)
    with run_on_commit():
        comment = comment_create(author=shopper, post_id=post.id, text="不错")
    assert fanout_deliver(post_id=comment.id) == 0
    assert stored(merchant) == [post.id]
    assert home_timeline_ids(merchant.pk) == [post.id]


def test_deleted_post_is_withdrawn(
    backend: str, merchant: Any, shopper: Any, follow: Any, post_as: Any, stored: Any, run_on_commit: Any
) -> None:
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    kept = post_as(merchant, "one")
    gone = post_as(merchant, "two")
    assert stored(shopper) == [gone.id, kept.id]
    with run_on_commit():
        post_delete(actor=merchant, post_id=gone.id)
    assert stored(shopper) == [kept.id]
    assert home_timeline_ids(shopper.pk) == [kept.id]
    assert FanoutJob.objects.get(post_id=gone.id).state == "withdrawn"
    assert fanout_deliver(post_id=gone.id) == 0


def test_timelines_are_capped(
    backend: str, settings: Any, merchant: Any, shopper: Any, follow: Any, post_as: Any, stored: Any
) -> None:
    settings.TIMELINE_CAP = 20
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    posts = [post_as(merchant, f"post {index}") for index in range(26)]
    newest = [post.id for post in reversed(posts)][:20]
    assert stored(shopper) == newest
    assert stored(merchant) == []  # never read: not built, so nothing stored
    # A rebuild is capped as well.
    TimelineState.objects.filter(user_id=shopper.pk).update(built_at=None)
    assert home_timeline_ids(shopper.pk, limit=40) == newest
    assert stored(shopper) == newest


def test_high_follower_authors_are_merged_at_read(
    backend: str, settings: Any, merchant: Any, people: Any, follow: Any, post_as: Any, stored: Any
) -> None:
    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    readers = people(3)
    small = people(1, prefix="small")[0]
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    follow(readers[0], small)
    home_timeline_ids(merchant.pk)
    big_old = post_as(merchant, "big 1")
    small_post = post_as(small, "small 1")
    big_new = post_as(merchant, "big 2")
    assert FanoutJob.objects.get(post_id=big_new.id).state == "skipped"
    assert stored(readers[0]) == [small_post.id]
    assert stored(merchant) == [big_new.id, big_old.id]  # the author still sees their own posts
    assert home_timeline_ids(readers[0].pk) == [big_new.id, small_post.id, big_old.id]
    assert home_timeline_ids(readers[0].pk, limit=2) == [big_new.id, small_post.id]
    assert home_timeline_ids(readers[0].pk, max_id=small_post.id) == [big_old.id]
    assert home_timeline_ids(readers[0].pk, since_id=big_old.id, limit=1) == [big_new.id]
    assert home_timeline_ids(readers[0].pk, min_id=big_old.id, limit=1) == [small_post.id]
    assert home_timeline_ids(readers[1].pk) == [big_new.id, big_old.id]


def test_lost_timeline_is_rebuilt_on_read(
    backend: str, merchant: Any, shopper: Any, follow: Any, post_as: Any, stored: Any
) -> None:
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    first = post_as(merchant, "一")
    if backend == "redis":
        get_redis().delete(home_key(shopper.pk))  # evicted, or the Redis server was replaced
    else:
        TimelineEntry.objects.filter(user_id=shopper.pk).delete()
        TimelineState.objects.filter(user_id=shopper.pk).update(built_at=None)
    second = post_as(merchant, "二")
    assert stored(shopper) == []  # nothing is delivered into a timeline that is not there
    assert home_timeline_ids(shopper.pk) == [second.id, first.id]
    assert stored(shopper) == [second.id, first.id]


def test_withdrawal_during_delivery_stops_it(
    backend: str, merchant: Any, people: Any, follow: Any, post_as: Any, stored: Any
) -> None:
    readers = people(2)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    post = post_as(merchant)
    fanout_withdraw(post_id=post.id, author_id=merchant.pk)
    assert [stored(reader) for reader in readers] == [[], []]
    FanoutJob.objects.filter(post_id=post.id).update(state="delivering", cursor=0)
    fanout_withdraw(post_id=post.id, author_id=merchant.pk)
    assert fanout_deliver(post_id=post.id) == 0
    assert [stored(reader) for reader in readers] == [[], []]


def test_reads_are_recorded_at_most_hourly(backend: str, shopper: Any) -> None:
    home_timeline_ids(shopper.pk)
    two_hours_ago = timezone.now() - timedelta(hours=2)
    TimelineState.objects.filter(user_id=shopper.pk).update(last_read_at=two_hours_ago)
    home_timeline_ids(shopper.pk)
    stamped = TimelineState.objects.get(user_id=shopper.pk).last_read_at
    assert stamped > timezone.now() - timedelta(minutes=1)
    home_timeline_ids(shopper.pk)
    assert TimelineState.objects.get(user_id=shopper.pk).last_read_at == stamped


def test_followers_of_an_author_are_read_from_the_index_alone(backend: str) -> None:
    """A delivery's list of followers (with whether each shows the author's reposts) comes from the
    follows' index without visiting the rows: for an author with 100k followers the rows cost 4x the
    index's walk."""
    from django.db import connection

    from weituan.microblog.timelines.fanout import _active_followers_sql

    sql = _active_followers_sql("= %s") + " AND f.follower_id > %s ORDER BY f.follower_id"
    params = [1, connection.ops.adapt_datetimefield_value(timezone.now()), 0]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
            assert "COVERING INDEX follow_followee_cover" in plan, plan
        else:
            # The test's few rows would be read by a sequential scan: ask for the index's plan.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = " | ".join(row[0] for row in cursor.fetchall())
            assert "Index Only Scan using follow_followee_cover" in plan, plan


def test_a_burst_reads_each_followers_activity_by_a_probe_and_finds_the_same_followers(
    backend: str, people: Any, follow: Any
) -> None:
    """The batched delivery of a burst probes each follower's state row by its key (a hash of every
    active reader's row costs more once every account reads its timeline); both ways find the same
    followers: the active ones, less those who muted the author for good."""
    from django.db import connection

    from weituan.microblog.models import Mute
    from weituan.microblog.timelines.fanout import _active_followers_sql, active_followers_of

    authors = people(3, "author")
    readers = people(5)
    for reader in readers:
        for author in authors:
            follow(reader, author)
    for reader in readers[:4]:
        home_timeline_ids(reader.pk)  # readers 0-3 active, reader 4 never read
    TimelineState.objects.filter(user_id=readers[3].pk).update(
        last_read_at=timezone.now() - timedelta(days=90)
    )
    Mute.objects.create(muter=readers[0], muted=authors[0])
    Mute.objects.create(muter=readers[1], muted=authors[0], expires_at=timezone.now() + timedelta(hours=1))
    ids = [author.pk for author in authors]
    probed = active_followers_of(ids, follows=15)
    hashed = active_followers_of(ids)
    assert probed == hashed
    assert [follower for follower, _ in probed[authors[0].pk]] == [readers[1].pk, readers[2].pk]
    assert [follower for follower, _ in probed[authors[1].pk]] == [
        readers[0].pk,
        readers[1].pk,
        readers[2].pk,
    ]
    if connection.vendor == "postgresql":
        sql = _active_followers_sql("= ANY(%s::bigint[])", probe=True)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, [ids, connection.ops.adapt_datetimefield_value(timezone.now())])
            plan = " | ".join(row[0] for row in cursor.fetchall())
        assert "SubPlan" in plan and "timelinestate_pkey" in plan and "Hash" not in plan, plan
