"""Fan-out on write: deliver a post to its author's active followers, in batches, resumably.

A FanoutJob row walks the FANOUT_GRAPH: pending -> delivering -> delivered, or pending -> skipped for
an author above FANOUT_FOLLOWER_THRESHOLD (their posts are merged in at read time), or -> withdrawn
when the post is deleted. Followers are visited in id order and the job's `cursor` records the last
one done, so a task retried after a crash resumes where it stopped; delivering an entry twice is
harmless (a unique row, or the same sorted-set member), so the job is idempotent.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
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


def active_follower_ids(author_id: int, after: int) -> list[int]:
    """The followers of `author_id` above id `after` who read their home timeline lately, in id order.

    One query for the whole list (a semi-join evaluated once is far cheaper than once per batch).
    Followers who muted the author are left out: their reads would drop the entry anyway.
    """
    active = TimelineState.objects.filter(last_read_at__gte=active_cutoff(), built_at__isnull=False)
    muters = Mute.objects.filter(muted_id=author_id).values("muter_id")
    rows = (
        Follow.objects.filter(followee_id=author_id, follower_id__gt=after)
        .filter(follower_id__in=active.values("user_id"))
        .exclude(follower_id__in=muters)
        .order_by("follower_id")
        .values_list("follower_id", flat=True)
    )
    return list(rows)


def fanout_deliver(*, post_id: int) -> int:
    """Deliver `post_id` to the home timelines of its author's active followers; returns entries written."""
    entry = post_entry(post_id)
    if entry is None:
        return 0
    job, _ = FanoutJob.objects.get_or_create(post_id=post_id, defaults={"author_id": entry.author_id})
    if job.state in ("delivered", "skipped", "withdrawn"):
        return 0
    store = timeline_store()
    if redis_enabled():
        author_index_add(entry)
    # The author sees their own post at once, whether or not followers get it on write.
    written = store.deliver([entry.author_id], entry) if _is_active(entry.author_id) else 0
    jobs = FanoutJob.objects.filter(post_id=post_id)
    if job.state == "pending":
        if followers_count(entry.author_id) > settings.FANOUT_FOLLOWER_THRESHOLD:
            advance(FANOUT_GRAPH, jobs, "skipped")
            return written
        if not advance(FANOUT_GRAPH, jobs, "delivering"):
            return written
    followers = active_follower_ids(entry.author_id, job.cursor)
    for start in range(0, len(followers), FANOUT_BATCH):
        batch = followers[start : start + FANOUT_BATCH]
        delivered = store.deliver(batch, entry)
        written += delivered
        cursor = batch[-1]
        # Only a job still delivering moves on; a withdrawal in between stops the loop.
        if not jobs.filter(state="delivering").update(cursor=cursor, delivered=F("delivered") + delivered):
            store.remove_post(post_id, batch)
            return written
    advance(FANOUT_GRAPH, jobs, "delivered")
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
