"""Fan-out on write: deliver a post to its author's active followers, in batches, resumably.

A FanoutJob row walks the FANOUT_GRAPH: pending -> delivering -> delivered, or pending -> skipped for
an author above FANOUT_FOLLOWER_THRESHOLD (their posts are merged in at read time), or -> withdrawn
when the post is deleted. Followers are visited in id order and the job's `cursor` records the last
one done, so a task retried after a crash resumes where it stopped; delivering an entry twice is
harmless (a unique row, or the same sorted-set member), so the job is idempotent.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Model
from django.db.models.functions import Coalesce
from django.utils import timezone

from weituan.core.ids import id_at
from weituan.core.redis import redis_enabled
from weituan.core.states import advance
from weituan.microblog.models import AccountStats, Follow, Mute, Post, PostKind
from weituan.microblog.timelines.authors import author_index_add, author_index_remove
from weituan.microblog.timelines.models import FANOUT_GRAPH, FanoutJob, TimelineState
from weituan.microblog.timelines.store import Entry, timeline_store

log = logging.getLogger(__name__)

FANOUT_BATCH = 5000
HOME_KINDS = (PostKind.ORIGINAL, PostKind.REPOST)
# Finished jobs are kept this long for inspection, then pruned: a job row is only needed while its
# delivery runs, and a retried delivery of a pruned job re-delivers harmlessly (entries are idempotent).
FANOUT_JOB_KEEP = timedelta(days=2)
FANOUT_PRUNE_BATCH = 5000
FANOUT_FINISHED = ("delivered", "skipped", "withdrawn")


def post_entry(post_id: int) -> Entry | None:
    """The timeline entry of a live original post or repost; None for comments and deleted posts."""
    row = (
        Post.objects.filter(id=post_id, kind__in=HOME_KINDS, deleted_at__isnull=True)
        .annotate(origin_author=Coalesce(F("root__author_id"), F("author_id")))
        .values_list("id", "author_id", "origin_author")
        .first()
    )
    return Entry(*row) if row else None


def followers_count(user_id: int) -> int:
    return AccountStats.objects.filter(user_id=user_id).values_list("followers_count", flat=True).first() or 0


def active_cutoff() -> datetime:
    return timezone.now() - timedelta(days=settings.FANOUT_ACTIVE_DAYS)


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Column names that are also SQL words, quoted (each backend quotes the same way for these).
_STATE, _CURSOR = '"state"', '"cursor"'


def active_follower_ids(author_id: int, after: int) -> list[int]:
    """The followers of `author_id` above id `after` who read their home timeline lately, in id order.

    One query for the whole list (a semi-join evaluated once is far cheaper than once per batch).
    Followers who muted the author are left out: their reads would drop the entry anyway.
    """
    sql = (
        f"SELECT f.follower_id FROM {_table(Follow)} f WHERE f.followee_id = %s AND f.follower_id > %s"  # noqa: S608
        f" AND f.follower_id IN (SELECT s.user_id FROM {_table(TimelineState)} s"
        " WHERE s.last_read_at >= %s AND s.built_at IS NOT NULL)"
        f" AND NOT f.follower_id IN (SELECT m.muter_id FROM {_table(Mute)} m WHERE m.muted_id = %s)"
        " ORDER BY f.follower_id"
    )
    cutoff = connection.ops.adapt_datetimefield_value(active_cutoff())
    with connection.cursor() as cursor:
        cursor.execute(sql, [author_id, after, cutoff, author_id])
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class _Start:
    """What a delivery starts from: the post's entry, its author's follower count and whether the author
    reads their own home timeline, and the post's job (state and cursor) if it has one."""

    entry: Entry
    followers: int
    author_active: bool
    state: str | None
    cursor: int


def _delivery_start(post_id: int) -> _Start | None:
    """One statement: the entry of a live original post or repost with what its delivery needs; None
    for comments, deleted and missing posts."""
    posts, stats, states, jobs = (_table(m) for m in (Post, AccountStats, TimelineState, FanoutJob))
    sql = (
        "SELECT p.id, p.author_id, COALESCE(r.author_id, p.author_id),"  # noqa: S608
        f" (SELECT a.followers_count FROM {stats} a WHERE a.user_id = p.author_id),"
        f" (SELECT 1 FROM {states} s WHERE s.user_id = p.author_id AND s.last_read_at >= %s"
        " AND s.built_at IS NOT NULL),"
        f" j.{_STATE}, j.{_CURSOR} FROM {posts} p LEFT JOIN {posts} r ON r.id = p.root_id"
        f" LEFT JOIN {jobs} j ON j.post_id = p.id"
        " WHERE p.id = %s AND p.kind IN (%s, %s) AND p.deleted_at IS NULL"
    )
    cutoff = connection.ops.adapt_datetimefield_value(active_cutoff())
    with connection.cursor() as cursor:
        cursor.execute(sql, [cutoff, post_id, *HOME_KINDS])
        row = cursor.fetchone()
    if row is None:
        return None
    post_id, author_id, origin_author_id, followers, author_active, state, cursor_at = row
    return _Start(
        entry=Entry(post_id, author_id, origin_author_id),
        followers=followers or 0,
        author_active=author_active is not None,
        state=state,
        cursor=cursor_at or 0,
    )


def _job_create(entry: Entry, state: str) -> bool:
    """Make the post's job in `state`, the state its pending job would move to now (one statement in
    place of making it pending and moving it); False when the job exists already."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"INSERT INTO {_table(FanoutJob)} (post_id, author_id, {_STATE}, state_changed_at, {_CURSOR},"  # noqa: S608
        " delivered, created_at) VALUES (%s, %s, %s, %s, 0, 0, %s) ON CONFLICT (post_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [entry.post_id, entry.author_id, state, now, now])
        return cursor.rowcount == 1


def _job_progress(post_id: int, cursor_at: int, delivered: int, *, last: bool) -> bool:
    """Record a batch delivered (the cursor moved on, the count added) while the job is delivering, and
    with the `last` batch move it to delivered; False when the job was withdrawn meanwhile."""
    values: list[Any] = [cursor_at, delivered]
    finish = ""
    if last:
        FANOUT_GRAPH.check("delivering", "delivered")
        finish = f", {_STATE} = %s, state_changed_at = %s"
        values += ["delivered", connection.ops.adapt_datetimefield_value(timezone.now())]
    sql = (
        f"UPDATE {_table(FanoutJob)} SET {_CURSOR} = %s, delivered = delivered + %s{finish}"  # noqa: S608
        f" WHERE post_id = %s AND {_STATE} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, post_id, "delivering"])
        return cursor.rowcount == 1


def fanout_deliver(*, post_id: int) -> int:
    """Deliver `post_id` to the home timelines of its author's active followers; returns entries written.

    A handful of statements: what the delivery starts from (the entry, the follower count, the job),
    the job made (or moved from pending), the followers, and one update per batch, the last one
    finishing the job.
    """
    start = _delivery_start(post_id)
    if start is None:
        return 0
    entry = start.entry
    if start.state in FANOUT_FINISHED:
        return 0
    store = timeline_store()
    if redis_enabled():
        author_index_add(entry)
    # The author sees their own post at once, whether or not followers get it on write.
    written = store.deliver([entry.author_id], entry) if start.author_active else 0
    above = start.followers > settings.FANOUT_FOLLOWER_THRESHOLD
    state, cursor_at = start.state, start.cursor
    if state is None:
        if _job_create(entry, "skipped" if above else "delivering"):
            if above:
                return written
            state = "delivering"
        else:  # made meanwhile by another run of this task: go on from where it stands
            job = FanoutJob.objects.filter(post_id=post_id).values_list("state", "cursor").first()
            if job is None or job[0] in FANOUT_FINISHED:
                return written
            state, cursor_at = job
    jobs = FanoutJob.objects.filter(post_id=post_id)
    if state == "pending":
        if above:
            advance(FANOUT_GRAPH, jobs, "skipped")
            return written
        if not advance(FANOUT_GRAPH, jobs, "delivering"):
            return written
    followers = active_follower_ids(entry.author_id, cursor_at)
    if not followers:
        advance(FANOUT_GRAPH, jobs, "delivered")
        return written
    for start_at in range(0, len(followers), FANOUT_BATCH):
        batch = followers[start_at : start_at + FANOUT_BATCH]
        delivered = store.deliver(batch, entry)
        written += delivered
        # Only a job still delivering moves on; a withdrawal in between stops the loop.
        last = start_at + FANOUT_BATCH >= len(followers)
        if not _job_progress(post_id, batch[-1], delivered, last=last):
            store.remove_post(post_id, batch)
            return written
    log.debug("fan-out of post %s wrote %s entries", post_id, written)
    return written


def fanout_withdraw(*, post_id: int, author_id: int) -> None:
    """Remove `post_id` from every home timeline that may hold it, and stop any delivery in progress."""
    _, created = FanoutJob.objects.get_or_create(
        post_id=post_id, defaults={"author_id": author_id, "state": "withdrawn"}
    )
    if not created:
        advance(FANOUT_GRAPH, FanoutJob.objects.filter(post_id=post_id), "withdrawn")
    store = timeline_store()
    if redis_enabled():
        author_index_remove(post_id=post_id, author_id=author_id)
    holders = Follow.objects.filter(followee_id=author_id).values_list("follower_id", flat=True)
    store.remove_post(post_id, [author_id, *holders.iterator(chunk_size=FANOUT_BATCH)])


def _is_active(user_id: int) -> bool:
    return TimelineState.objects.filter(
        user_id=user_id, last_read_at__gte=active_cutoff(), built_at__isnull=False
    ).exists()


def fanout_jobs_prune(*, older_than: timedelta = FANOUT_JOB_KEEP, most: int = 100_000) -> int:
    """Delete finished fan-out jobs of posts made before `older_than` ago; returns how many went.

    Post ids are time-sortable, so the age test is a range on the primary key rather than a scan of
    `created_at`. Jobs still pending or delivering are kept whatever their age. At most `most` rows
    go per call, in short batches, so a large backlog never holds a long lock; the next run goes on.
    """
    below = id_at(timezone.now() - older_than)
    removed = 0
    while removed < most:
        ids = list(
            FanoutJob.objects.filter(post_id__lt=below, state__in=FANOUT_FINISHED)
            .order_by("post_id")
            .values_list("post_id", flat=True)[: min(FANOUT_PRUNE_BATCH, most - removed)]
        )
        if not ids:
            break
        removed += FanoutJob.objects.filter(post_id__in=ids, state__in=FANOUT_FINISHED).delete()[0]
    return removed


# A post's fan-out is enqueued after its transaction commits; a server stopped in between leaves a
# post without a job. The sweep looks back this far, and leaves alone posts younger than SETTLE (their
# task is most likely still queued).
FANOUT_SWEEP_WINDOW = timedelta(minutes=15)
FANOUT_SWEEP_SETTLE = timedelta(minutes=1)


def fanout_sweep(*, most: int = 5_000) -> int:
    """Deliver the recent original posts and reposts that have no fan-out job; returns how many.

    Ids are time-sortable, so "recent" is a range of the primary key, and "no job" an anti-join on the
    job's primary key. Delivering is idempotent, so a post whose task runs meanwhile is harmless.
    """
    now = timezone.now()
    low, high = id_at(now - FANOUT_SWEEP_WINDOW), id_at(now - FANOUT_SWEEP_SETTLE)
    jobs = FanoutJob.objects.filter(post_id__gte=low, post_id__lt=high).values("post_id")
    orphans = list(
        Post.objects.filter(id__gte=low, id__lt=high, kind__in=HOME_KINDS, deleted_at__isnull=True)
        .exclude(id__in=jobs)
        .order_by("id")
        .values_list("id", flat=True)[:most]
    )
    for post_id in orphans:
        fanout_deliver(post_id=post_id)
    if orphans:
        log.warning("fan-out sweep delivered %s post(s) that had no fan-out job", len(orphans))
    return len(orphans)
