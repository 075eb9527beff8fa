"""Periodic upkeep of the fan-out jobs: pruning finished ones, delivering the posts left without one,
and taking over the deliveries left by runs that stopped."""

import logging
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from weituan.core.ids import id_at
from weituan.core.rows import fetch_rows
from weituan.core.sqlite_writer import sqlite_writer
from weituan.microblog.models import Post
from weituan.microblog.timelines.fanout import (
    FANOUT_FINISHED,
    HOME_KINDS,
    fanout_deliver,
    fanout_deliver_many,
    fanout_withdraw,
    posts_without_job,
)
from weituan.microblog.timelines.models import FanoutJob
from weituan.microblog.timelines.tasks import FANOUT_TAKE_ALONG

log = logging.getLogger(__name__)

# Finished jobs are kept this long for inspection, then pruned: a job row is only needed while its
# delivery runs, and a retried delivery of a pruned job re-delivers harmlessly (entries are idempotent).
FANOUT_JOB_KEEP = timedelta(days=2)
FANOUT_PRUNE_BATCH = 5000


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
# A delivery records each batch (a few thousand followers, well under a second) and renews its lease
# with it: a job delivering with no progress for this long was left by a run that stopped.
FANOUT_LEASE = timedelta(minutes=5)


def fanout_sweep(*, most: int = 5_000) -> int:
    """Deliver the recent original posts and reposts that have no fan-out job, and take over the
    deliveries left by runs that stopped (`fanout_stalled_claim`); returns how many posts were swept.

    Ids are time-sortable, so "recent" is a range of the primary key, and "no job" an anti-join on the
    job's primary key. Delivering is idempotent, so a post whose task runs meanwhile is harmless.
    """
    now = timezone.now()
    low, high = id_at(now - FANOUT_SWEEP_WINDOW), id_at(now - FANOUT_SWEEP_SETTLE)
    orphans = posts_without_job(low=low, high=high - 1, most=most)
    # Together, as many as the worker takes along from its queue (`FANOUT_TAKE_ALONG`): a sweep finds
    # many posts at once when the worker has fallen behind, and one by one it would fall further.
    for start in range(0, len(orphans), FANOUT_TAKE_ALONG):
        fanout_deliver_many(post_ids=orphans[start : start + FANOUT_TAKE_ALONG])
    if orphans:
        log.warning("fan-out sweep delivered %s post(s) that had no fan-out job", len(orphans))
    stalled = fanout_stalled_claim(most=most)
    for post_id, author_id in stalled:
        try:
            _stalled_resume(post_id=post_id, author_id=author_id)
        except Exception:
            # Its lease was renewed by the claim: the next sweep after the lease tries it again.
            log.exception("fan-out of post %s taken over by the sweep failed", post_id)
    if stalled:
        log.warning("fan-out sweep took over %s delivery(ies) left by a run that stopped", len(stalled))
    return len(orphans) + len(stalled)


def fanout_stalled_claim(*, most: int = 5_000) -> list[tuple[int, int]]:
    """Claim the jobs delivering with no progress for longer than FANOUT_LEASE, oldest post first;
    returns their (post id, author id).

    One conditional UPDATE renews each one's lease, so a sweep running at the same time finds it taken:
    on PostgreSQL the rows are picked FOR UPDATE SKIP LOCKED (a concurrent claim passes over them rather
    than waiting, then finds the lease renewed), on SQLite the statement holds the write lock. The run
    that stopped, should it still be alive, stops at its next batch: only one run records a batch
    (`_job_progress`). The jobs table holds about FANOUT_JOB_KEEP of posts, so the scan stays small.
    """
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    stale, renewed = adapt(now - FANOUT_LEASE), adapt(now)
    table, state = connection.ops.quote_name(FanoutJob._meta.db_table), connection.ops.quote_name("state")
    locking = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = (
        f"UPDATE {table} SET progress_at = %s WHERE post_id IN (SELECT post_id FROM {table}"  # noqa: S608
        f" WHERE {state} = %s AND progress_at < %s ORDER BY post_id LIMIT %s{locking})"
        f" AND {state} = %s AND progress_at < %s RETURNING post_id, author_id"
    )
    with sqlite_writer():
        rows = fetch_rows(sql, [renewed, "delivering", stale, most, "delivering", stale])
    return sorted((post_id, author_id) for post_id, author_id in rows)


def _stalled_resume(*, post_id: int, author_id: int) -> None:
    """Go on with a claimed delivery from its cursor; a post deleted meanwhile (its withdrawal may have
    stopped with the run) is taken back out of the timelines instead, which ends the job."""
    if Post.objects.filter(id=post_id, kind__in=HOME_KINDS, deleted_at__isnull=True).exists():
        fanout_deliver(post_id=post_id)
    else:
        fanout_withdraw(post_id=post_id, author_id=author_id)
