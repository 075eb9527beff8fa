"""Fan-out on write: deliver a post to its author's active followers, in batches, resumably.

A FanoutJob row walks the FANOUT_GRAPH: pending -> delivering -> delivered, or pending -> skipped for
an author above FANOUT_FOLLOWER_THRESHOLD (their posts are merged in at read time), or -> withdrawn
when the post is deleted. Followers are visited in id order and the job's `cursor` records the last
one done, so a task retried after a crash resumes where it stopped; delivering an entry twice is
harmless (a unique row, or the same sorted-set member), so the job is idempotent.

A batch is recorded only if the cursor is still where the run found it (the statement recording it
compares it), so when two runs deliver one job, one goes on and the other stops at its next batch,
having written nothing the first does not write too. Each batch recorded renews the job's lease
(`progress_at`); a job left delivering by a run that stopped is taken over by the sweep once the lease
has run out (`upkeep.fanout_sweep`).
"""

import json
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Model
from django.db.models.functions import Coalesce
from django.utils import timezone

from weituan.core.redis import redis_enabled
from weituan.core.rows import fetch_rows
from weituan.core.sqlite_checkpoint import checkpoints_held
from weituan.core.sqlite_writer import sqlite_writer
from weituan.core.states import advance
from weituan.core.stream_events import stream_publish
from weituan.microblog.models import AccountStats, Follow, Mute, Post, PostKind
from weituan.microblog.search.facade import posts_index_fanned_out
from weituan.microblog.services.notifications import notifications_for_new_posts
from weituan.microblog.timelines.authors import author_index_add, author_index_add_many, author_index_remove
from weituan.microblog.timelines.models import FANOUT_GRAPH, FanoutJob, TimelineState
from weituan.microblog.timelines.store import Entry, timeline_store

log = logging.getLogger(__name__)

FANOUT_BATCH = 5000
HOME_KINDS = (PostKind.ORIGINAL, PostKind.REPOST)
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


def active_cutoff(now: datetime | None = None) -> datetime:
    """Readers who read their home timeline after this are active (fan-out keeps theirs current)."""
    return (now or timezone.now()) - timedelta(days=settings.FANOUT_ACTIVE_DAYS)


def _table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


# Column names that are also SQL words, quoted (each backend quotes the same way for these).
_STATE, _CURSOR = '"state"', '"cursor"'
# A true boolean literal as each backend's partial indexes spell it (`follow_notify`).
_TRUE = {"postgresql": "true", "sqlite": "1"}


def _any_of(ids: Sequence[int]) -> tuple[str, Any]:
    """A condition's right side matching any of `ids` as one parameter (an array on PostgreSQL, a JSON
    list on SQLite), so a statement's text, and with it its prepared plan, is the same for any number."""
    if connection.vendor == "postgresql":
        return "= ANY(%s::bigint[])", list(ids)
    return "IN (SELECT value FROM json_each(%s))", json.dumps(list(ids))


# Up to this many follows in all, the followers' activity is probed follow by follow (see below).
PROBE_FOLLOWS_MOST = 20_000


def _active_followers_sql(match: str, *, probe: bool = False) -> str:
    """The follows of the authors `match` picks whose follower is an active reader and has not muted the
    author for good. Whether a follower is active is a look-up of their state row: as EXISTS, which
    PostgreSQL may run as a hash of every active reader's state row (the cheaper way for a large
    author's followers), or, with `probe`, as a scalar subquery it runs as one probe of the row's key
    per follow (for a burst of posts by authors with a few dozen followers each, a thousand probes
    rather than a hash of every reader's row once the world's readers are all active: 3 ms against
    19 ms for fifty authors of 1,055 follows among 100,000 readers)."""
    active = (
        f"SELECT 1 FROM {_table(TimelineState)} s WHERE s.user_id = f.follower_id"  # noqa: S608
        " AND s.last_read_at >= %s AND s.built_at IS NOT NULL"
    )
    is_active = f"({active}) IS NOT NULL" if probe else f"EXISTS ({active})"
    return (
        f"SELECT f.followee_id, f.follower_id, f.show_reblogs FROM {_table(Follow)} f"  # noqa: S608
        f" WHERE f.followee_id {match} AND {is_active}"
        f" AND NOT EXISTS (SELECT 1 FROM {_table(Mute)} m WHERE m.muted_id = f.followee_id"
        " AND m.muter_id = f.follower_id AND m.expires_at IS NULL)"
    )


def active_follower_ids(author_id: int, after: int, *, plain_repost: bool = False) -> list[int]:
    """The followers of `author_id` above id `after` who read their home timeline lately, in id order.

    One query for the whole list (a semi-join evaluated once is far cheaper than once per batch).
    Followers who muted the author for good are left out: their reads would drop the entry anyway. A
    mute with an end does not stop delivery (whether or not it has ended): reads drop the entry while
    it lasts, and it is in the timeline once the mute is over, with nothing to put back then. For a
    `plain_repost`, so are those whose follow hides the author's reposts (Mastodon's `reblogs=false`).
    """
    sql = _active_followers_sql("= %s") + " AND f.follower_id > %s ORDER BY f.follower_id"
    cutoff = connection.ops.adapt_datetimefield_value(active_cutoff())
    rows = fetch_rows(sql, [author_id, cutoff, after])
    return [row[1] for row in rows if row[2] or not plain_repost]


def active_followers_of(
    author_ids: Sequence[int], *, follows: int | None = None
) -> dict[int, list[tuple[int, bool]]]:
    """`active_follower_ids` of each of `author_ids` from the start, in one statement: author -> the
    followers in id order, each with whether their follow shows the author's plain reposts (an author
    without any is left out). `follows`, the authors' followers in all when known, picks how each
    follower's activity is read (`_active_followers_sql`)."""
    match, ids = _any_of(sorted(set(author_ids)))
    probe = follows is not None and follows <= PROBE_FOLLOWS_MOST
    sql = _active_followers_sql(match, probe=probe) + " ORDER BY f.followee_id, f.follower_id"
    cutoff = connection.ops.adapt_datetimefield_value(active_cutoff())
    found: dict[int, list[tuple[int, bool]]] = {}
    for author_id, follower_id, show_reblogs in fetch_rows(sql, [ids, cutoff]):
        found.setdefault(author_id, []).append((follower_id, bool(show_reblogs)))
    return found


@dataclass(frozen=True, slots=True)
class _Start:
    """What a delivery starts from: the post's entry, its author's follower count and whether the author
    reads their own home timeline, the post's job (state and cursor) if it has one, whether the post
    is a plain repost (one that says nothing of its own), and whether it is news to followers who follow
    its author with `notify` (a post of its own or a quote, when there are such followers)."""

    entry: Entry
    followers: int
    author_active: bool
    state: str | None
    cursor: int
    plain_repost: bool
    notify: bool


def _delivery_starts(post_ids: Sequence[int]) -> dict[int, _Start]:
    """One statement: what the delivery of each of `post_ids` starts from, by post id; comments, deleted
    and missing posts are left out. Like the statements below, it is prepared once per PostgreSQL
    connection: planning them cost the worker more than running them."""
    posts, stats, states, jobs, follows = (
        _table(m) for m in (Post, AccountStats, TimelineState, FanoutJob, Follow)
    )
    match, ids = _any_of(post_ids)
    sql = (
        "SELECT p.id, p.author_id, COALESCE(r.author_id, p.author_id),"  # noqa: S608
        f" (SELECT a.followers_count FROM {stats} a WHERE a.user_id = p.author_id),"
        f" (SELECT 1 FROM {states} s WHERE s.user_id = p.author_id AND s.last_read_at >= %s"
        " AND s.built_at IS NOT NULL),"
        f" j.{_STATE}, j.{_CURSOR}, CASE WHEN p.kind = %s AND p.comment = '' THEN 1 ELSE 0 END,"
        # An index probe (`follow_notify`): most authors have no follower asking to be notified.
        f" (SELECT 1 FROM {follows} f WHERE f.followee_id = p.author_id AND f.notify = {_TRUE[connection.vendor]}"
        " LIMIT 1)"
        f" FROM {posts} p LEFT JOIN {posts} r ON r.id = p.root_id LEFT JOIN {jobs} j ON j.post_id = p.id"
        f" WHERE p.id {match} AND p.kind IN (%s, %s) AND p.deleted_at IS NULL"
    )
    cutoff = connection.ops.adapt_datetimefield_value(active_cutoff())
    starts: dict[int, _Start] = {}
    for row in fetch_rows(sql, [cutoff, PostKind.REPOST.value, ids, *HOME_KINDS]):
        post_id, author_id, origin_author_id, followers, author_active, state, cursor_at, plain, notified = (
            row
        )
        starts[post_id] = _Start(
            entry=Entry(post_id, author_id, origin_author_id),
            followers=followers or 0,
            author_active=author_active is not None,
            state=state,
            cursor=cursor_at or 0,
            plain_repost=bool(plain),
            notify=notified is not None and not plain,
        )
    return starts


def _delivery_start(post_id: int) -> _Start | None:
    """What the delivery of `post_id` starts from; None for comments, deleted and missing posts."""
    return _delivery_starts([post_id]).get(post_id)


def _job_create(entry: Entry, state: str) -> bool:
    """Make the post's job in `state`, the state its pending job would move to now (one statement in
    place of making it pending and moving it); False when the job exists already."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"INSERT INTO {_table(FanoutJob)} (post_id, author_id, {_STATE}, state_changed_at, {_CURSOR},"  # noqa: S608
        " delivered, created_at) VALUES (%s, %s, %s, %s, 0, 0, %s) ON CONFLICT (post_id) DO NOTHING"
        " RETURNING post_id"
    )
    return bool(fetch_rows(sql, [entry.post_id, entry.author_id, state, now, now]))


def _columns_source(columns: Sequence[tuple[str, list[int]]]) -> tuple[str, list[Any]]:
    """A row source of integer columns ((name, values), all as long) and its parameters: `unnest` of one
    array per column on PostgreSQL, one JSON list of rows on SQLite. The names are this module's own."""
    names = ", ".join(name for name, _ in columns)
    if connection.vendor == "postgresql":
        arrays = ", ".join(["%s::bigint[]"] * len(columns))
        return f"SELECT * FROM unnest({arrays}) AS v({names})", [values for _, values in columns]  # noqa: S608
    picks = ", ".join(
        f"json_extract(value, '$[{index}]') AS {name}" for index, (name, _) in enumerate(columns)
    )
    rows = [list(row) for row in zip(*(values for _, values in columns), strict=True)]
    return f"SELECT {picks} FROM json_each(%s)", [json.dumps(rows)]  # noqa: S608


def _jobs_start(entries: Sequence[Entry]) -> set[int]:
    """Make the jobs of new posts directly in `delivering` (as `_job_create` makes one), in one
    statement; returns the posts whose job was made here (the others had one already)."""
    FANOUT_GRAPH.check("pending", "delivering")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    source, params = _columns_source(
        [
            ("post_id", [entry.post_id for entry in entries]),
            ("author_id", [entry.author_id for entry in entries]),
        ]
    )
    sql = (
        f"INSERT INTO {_table(FanoutJob)} (post_id, author_id, {_STATE}, state_changed_at, {_CURSOR},"  # noqa: S608
        f" delivered, created_at) SELECT v.post_id, v.author_id, %s, %s, 0, 0, %s FROM ({source}) v"
        " WHERE true ON CONFLICT (post_id) DO NOTHING RETURNING post_id"
    )
    return {row[0] for row in fetch_rows(sql, ["delivering", now, now, *params])}


def _jobs_finish(progress: Sequence[tuple[int, int, int]]) -> set[int]:
    """Record the single batch of each job ((post id, last follower, entries delivered)) and move it to
    delivered, as `_job_progress` does with a last batch from a new job's cursor (0), in one statement;
    returns the posts whose job moved (the others were withdrawn meanwhile, or another run recorded
    their batch first)."""
    FANOUT_GRAPH.check("delivering", "delivered")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    source, params = _columns_source(
        [
            ("job_post", [post_id for post_id, _, _ in progress]),
            ("last_id", [last_id for _, last_id, _ in progress]),
            ("added", [added for _, _, added in progress]),
        ]
    )
    sql = (
        f"UPDATE {_table(FanoutJob)} SET {_CURSOR} = v.last_id, delivered = delivered + v.added,"  # noqa: S608
        f" {_STATE} = %s, state_changed_at = %s FROM ({source}) v"
        f" WHERE post_id = v.job_post AND {_STATE} = %s AND {_CURSOR} = 0 RETURNING post_id"
    )
    return {row[0] for row in fetch_rows(sql, ["delivered", now, *params, "delivering"])}


def _job_progress(post_id: int, after: int, cursor_at: int, delivered: int, *, last: bool) -> bool:
    """Record a batch delivered from cursor `after` (the cursor moved on to `cursor_at`, the count
    added, the lease renewed) while the job is delivering and its cursor is still `after`, and with the
    `last` batch move it to delivered; False when the job was withdrawn meanwhile, or another run of it
    recorded the batch first (`_jobs_withdrawn` tells which)."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    values: list[Any] = [cursor_at, delivered, now]
    finish = ""
    if last:
        FANOUT_GRAPH.check("delivering", "delivered")
        finish = f", {_STATE} = %s, state_changed_at = %s"
        values += ["delivered", now]
    sql = (
        f"UPDATE {_table(FanoutJob)} SET {_CURSOR} = %s, delivered = delivered + %s, progress_at = %s{finish}"  # noqa: S608
        f" WHERE post_id = %s AND {_STATE} = %s AND {_CURSOR} = %s"
    )
    return bool(fetch_rows(sql + " RETURNING post_id", [*values, post_id, "delivering", after]))


def _jobs_withdrawn(post_ids: Sequence[int]) -> set[int]:
    """Those of `post_ids` whose job was withdrawn: a run whose batch could not be recorded takes its
    entries back out only then; otherwise another run recorded it and delivers the same entries."""
    return set(
        FanoutJob.objects.filter(post_id__in=post_ids, state="withdrawn").values_list("post_id", flat=True)
    )


def _followers_notify(starts: Sequence[_Start]) -> None:
    """Notify the followers who asked for it of each of `starts` that is news to them; call once per
    post, in the transaction that makes its job (or moves it from pending), so a delivery run again does
    not notify twice and a delivery that fails before that commit leaves neither: the post then has no
    job, and the sweep (`upkeep.fanout_sweep`) delivers it again, notifying then. Every post's delivery
    starts here, also a high-follower author's whose fan-out is skipped."""
    posts = [(start.entry.post_id, start.entry.author_id) for start in starts if start.notify]
    if posts:
        notifications_for_new_posts(posts=posts)


def _telling(starts: Sequence[_Start]) -> AbstractContextManager[Any]:
    """The transaction a job's start and its notifications share; none is needed (nor its commit's
    round trip spent) when none of `starts` has followers to tell."""
    return transaction.atomic() if any(start.notify for start in starts) else nullcontext()


def _job_start(entry: Entry, state: str, start: _Start) -> bool:
    """`_job_create`, and when the job was made here, the followers told (`_followers_notify`), in
    one transaction."""
    with _telling([start]):
        made = _job_create(entry, state)
        if made:
            _followers_notify([start])
    return made


def _job_start_pending(jobs: Any, state: str, start: _Start) -> bool:
    """Move a pending job on to `state` and, when it moved here, tell the followers, in one transaction."""
    with _telling([start]):
        moved = advance(FANOUT_GRAPH, jobs, state, progress_at=timezone.now())
        if moved:
            _followers_notify([start])
    return bool(moved)


def _reblogs_hidden_meanwhile(deliveries: Sequence[tuple[Sequence[int], Entry]], store: Any) -> None:
    """Take plain reposts just delivered ((followers, entry) pairs) back out of the timelines of the
    followers whose follow now hides their author's reposts.

    The followers were read before the entries were written. One who turned reposts off in between
    had the entries delivered before cleared (`home_timeline_drop_reblogs`), possibly before this one
    landed. Reading the follows again after the write settles it either way: a change committed before
    this read is seen here, and one committed after it is cleared by its own task, which runs after
    that commit and so finds the entry. One probe of `follow_reblogs_hidden_by`, only for plain reposts.
    """
    if not deliveries:
        return
    authors = sorted({entry.author_id for _, entry in deliveries})
    hidden: dict[int, set[int]] = {}
    quiet = Follow.objects.filter(followee_id__in=authors, show_reblogs=False)
    for author_id, follower_id in quiet.values_list("followee_id", "follower_id"):
        hidden.setdefault(author_id, set()).add(follower_id)
    for followers, entry in deliveries:
        gone = [follower_id for follower_id in followers if follower_id in hidden.get(entry.author_id, ())]
        if gone:
            store.remove_post(entry.post_id, gone)


def posts_without_job(*, low: int, high: int, most: int) -> list[int]:
    """Original posts and reposts with ids in [low, high] that are not deleted and have no fan-out job
    yet, oldest first, at most `most`: an id range of the primary key and an anti-join on the job's."""
    jobs = FanoutJob.objects.filter(post_id__gte=low, post_id__lte=high).values("post_id")
    return list(
        Post.objects.filter(id__gte=low, id__lte=high, kind__in=HOME_KINDS, deleted_at__isnull=True)
        .exclude(id__in=jobs)
        .order_by("id")
        .values_list("id", flat=True)[:most]
    )


def fanout_deliver(*, post_id: int) -> int:
    """Deliver `post_id` to the home timelines of its author's active followers; returns entries written.

    A handful of statements: what the delivery starts from (the entry, the follower count, the job),
    the job made (or moved from pending), the followers, and one update per batch, the last one
    finishing the job. The job's start notifies the followers who follow the author with `notify`.
    First, on SQLite, the post is indexed for search if its write left that to its fan-out
    (`search.facade.post_index_deferred`).
    """
    posts_index_fanned_out([post_id])
    return _deliver_one(post_id)


def _deliver_one(post_id: int) -> int:
    """`fanout_deliver` of a post already indexed (`posts_index_fanned_out`)."""
    start = _delivery_start(post_id)
    if start is None or start.state in FANOUT_FINISHED:
        return 0
    written = _deliver_from(start)
    _streamed(start.entry)
    return written


def _streamed(entry: Entry) -> None:
    """Tell the streams of the post now in the home timelines (and in the public ones)."""
    stream_publish({"t": "post", "id": entry.post_id, "a": entry.author_id})


def _deliver_from(start: _Start) -> int:
    """The body of `fanout_deliver`, from where the delivery starts."""
    post_id = start.entry.post_id
    entry = start.entry
    store = timeline_store()
    if redis_enabled():
        author_index_add(entry)
    # The author sees their own post at once, whether or not followers get it on write.
    written = store.deliver([entry.author_id], entry) if start.author_active else 0
    above = start.followers > settings.FANOUT_FOLLOWER_THRESHOLD
    state, cursor_at = start.state, start.cursor
    if state is None:
        if _job_start(entry, "skipped" if above else "delivering", start):
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
            _job_start_pending(jobs, "skipped", start)
            return written
        if not _job_start_pending(jobs, "delivering", start):
            return written
    followers = active_follower_ids(entry.author_id, cursor_at, plain_repost=start.plain_repost)
    if not followers:
        advance(FANOUT_GRAPH, jobs, "delivered")
        return written
    for start_at in range(0, len(followers), FANOUT_BATCH):
        batch = followers[start_at : start_at + FANOUT_BATCH]
        delivered = store.deliver(batch, entry)
        written += delivered
        if start.plain_repost:
            _reblogs_hidden_meanwhile([(batch, entry)], store)
        # Only a job still delivering moves on; a withdrawal in between stops the loop.
        last = start_at + FANOUT_BATCH >= len(followers)
        if not _job_progress(post_id, cursor_at, batch[-1], delivered, last=last):
            if _jobs_withdrawn([post_id]):
                store.remove_post(post_id, batch)
            return written
        cursor_at = batch[-1]
    log.debug("fan-out of post %s wrote %s entries", post_id, written)
    return written


def fanout_deliver_many(*, post_ids: Sequence[int]) -> dict[int, int]:
    """`fanout_deliver` of each of `post_ids`, the common case done for all of them together; returns
    the entries written per post.

    A burst of posts is mostly new posts (no job yet) by authors with at most FANOUT_BATCH followers and
    under the threshold: for those, one statement reads where each starts, one makes their jobs, one
    reads the active followers of all their authors, one round trip to the store delivers the lot, and
    one statement finishes the jobs, instead of a handful of each per post. Any other post (a job there
    already, a high-follower author, more than one batch of followers) goes through `fanout_deliver` on
    its own. Each post ends as its own `fanout_deliver` would leave it; a job withdrawn meanwhile has
    its entries taken back out, as there. The posts left to their fan-out to index are indexed first,
    all in one transaction.
    """
    wanted = list(dict.fromkeys(post_ids))
    posts_index_fanned_out(wanted)
    written = dict.fromkeys(wanted, 0)
    starts = _delivery_starts(wanted) if wanted else {}
    limit = min(settings.FANOUT_FOLLOWER_THRESHOLD, FANOUT_BATCH)
    simple: list[_Start] = []
    for post_id in wanted:
        start = starts.get(post_id)
        if start is None or start.state in FANOUT_FINISHED:
            continue
        if start.state is None and start.followers <= limit:
            simple.append(start)
        else:
            written[post_id] = _deliver_one(post_id)
    if not simple:
        return written
    store = timeline_store()
    if redis_enabled():
        author_index_add_many([start.entry for start in simple])
    # On SQLite the writes queue for the write lock as posts do (rather than poll for it while posts
    # wait), and the log's checkpoint waits until they are done.
    with checkpoints_held(writes=len(simple)):
        # The authors see their own posts at once, as `fanout_deliver` has them.
        own = [([start.entry.author_id], start.entry) for start in simple if start.author_active]
        for (_, entry), count in zip(own, store.deliver_many(own), strict=True):
            written[entry.post_id] += count
        _deliver_fresh(simple, store, written)
    return written


def _deliver_fresh(simple: list[_Start], store: Any, written: dict[int, int]) -> None:
    """The bulk part of `fanout_deliver_many` for new posts (see there), adding to `written`."""
    # The jobs and the notifications of the posts whose job is made here commit together (see
    # `_followers_notify`).
    with sqlite_writer(), _telling(simple):
        made = _jobs_start([start.entry for start in simple])
        fresh = [start for start in simple if start.entry.post_id in made]
        _followers_notify(fresh)
    for start in simple:
        if start.entry.post_id not in made:  # made meanwhile by another run: on from where it stands
            written[start.entry.post_id] = _deliver_one(start.entry.post_id)
    if not fresh:
        return
    authors = {start.entry.author_id: start.followers for start in fresh}
    followers = active_followers_of(list(authors), follows=sum(authors.values()))
    # A plain repost skips the followers whose follow hides the author's reposts.
    batches = {
        start.entry.post_id: [
            follower_id
            for follower_id, show_reblogs in followers.get(start.entry.author_id, [])
            if show_reblogs or not start.plain_repost
        ]
        for start in fresh
    }
    reaching = [(batches[s.entry.post_id], s.entry) for s in fresh if batches[s.entry.post_id]]
    delivered = dict.fromkeys(batches, 0)
    for (_, entry), count in zip(reaching, store.deliver_many(reaching), strict=True):
        delivered[entry.post_id] = count
    plain = {start.entry.post_id for start in fresh if start.plain_repost}
    _reblogs_hidden_meanwhile([delivery for delivery in reaching if delivery[1].post_id in plain], store)
    with sqlite_writer():
        moved = _jobs_finish(
            [(post_id, batch[-1] if batch else 0, delivered[post_id]) for post_id, batch in batches.items()]
        )
    unmoved = [post_id for post_id, batch in batches.items() if post_id not in moved and batch]
    withdrawn = _jobs_withdrawn(unmoved) if unmoved else set()
    for post_id, batch in batches.items():
        written[post_id] += delivered[post_id]
        if post_id in withdrawn:  # withdrawn while delivering: take the entries back out
            store.remove_post(post_id, batch)
    for start in fresh:
        _streamed(start.entry)


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
