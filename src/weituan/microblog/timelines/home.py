"""The home timeline: read from the store, merge in followed high-follower authors, rebuild when stale.

A read costs a fixed number of queries whatever the page size: one query for the timeline's state, the
hidden authors and the followed high-follower authors together; the store read (one indexed query, or
one Redis round trip); and the high-follower authors' posts when there are any (one query, or with
Redis one round trip to their indexes, see `authors`).

A follow can hide the followee's plain reposts (Mastodon's `reblogs=false`). Fan-out does not deliver
those to such a follower, and turning it off takes the ones delivered before back out (see
`home_timeline_drop_reblogs`); a high-follower author's are left out of the merge at read. The indexes
of `authors` cannot tell a plain repost from a quote, so with Redis such authors are read from the
posts table instead: one query more, only for a reader who hides a high-follower author's reposts.
"""

import logging
from collections.abc import Collection, Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from weituan.accounts.tokens import access_token_viewer_params, access_token_viewer_sql
from weituan.core.redis import REDIS_UNREACHABLE, redis_enabled, scripts_run, unreachable_logged
from weituan.core.rows import db_datetimes, db_vendor, fetch_rows
from weituan.microblog.models import (
    AccountStats,
    Block,
    FilterContext,
    Follow,
    KeywordFilter,
    Mute,
    Post,
    PostKind,
)
from weituan.microblog.timelines.authors import (
    authors_recent,
    home_with_authors_call,
    home_with_authors_reply,
)
from weituan.microblog.timelines.fanout import HOME_KINDS, active_cutoff
from weituan.microblog.timelines.models import TimelineEntry, TimelineState
from weituan.microblog.timelines.store import Bounds, Entry, RedisTimelineStore, home_key, timeline_store

log = logging.getLogger(__name__)

# Reading a few more entries than asked absorbs those dropped for a block or mute made since delivery.
READ_SLACK = 10
# How many more reads a page makes past entries hidden since delivery before it is answered short.
MORE_READS = 3
# Recording every read would turn each timeline read into a write; an hour is precise enough for
# deciding who is active over FANOUT_ACTIVE_DAYS.
READ_STAMP_EVERY = timedelta(hours=1)


class ReadContext(NamedTuple):
    hidden: frozenset[int]
    merged_authors: tuple[int, ...]
    built: bool  # the stored timeline is built and its owner active, so fan-out keeps it current
    stamp_due: bool  # the last recorded read is older than READ_STAMP_EVERY
    # Among `merged_authors`, those whose plain reposts the reader's follow hides.
    reblogs_hidden: frozenset[int] = frozenset()
    # Among `merged_authors`, the newest home-timeline post id of each whose newest is known.
    newest: tuple[tuple[int, int], ...] = ()
    # Among `hidden`, those hidden only by a mute with an end: their posts stay in the stored timeline
    # (a rebuild keeps them too), dropped at read while the mute lasts, so they are back when it ends.
    muted_for_now: frozenset[int] = frozenset()
    # The reader has a keyword filter for the home timeline in force: the page is filtered for them.
    filtered: bool = False
    # Without Redis, when the context was read for a page (`PageAsk`): the id of the stored entry the
    # page's read ends on, `merged_authors` being only those whose newest post is at or above it (the
    # others cannot reach the page); None when every followed big author is in `merged_authors`.
    authors_floor: int | None = None


class PageAsk(NamedTuple):
    """The page a read context is read for: the stored read's upper bound and how many entries it takes."""

    upper: int | None
    entries: int


def _context_selects(user: str) -> list[str]:
    """The parts of the context query for the reader `user` (a placeholder or a column)."""
    q = connection.ops.quote_name
    state, block, mute, follow, stats, filters = (
        q(model._meta.db_table) for model in (TimelineState, Block, Mute, Follow, AccountStats, KeywordFilter)
    )
    # The threshold is written into the text, not passed: knowing it, PostgreSQL plans the statement
    # once for all readers (as a parameter, its plan for "above an unknown count" looked so costly that
    # it planned the statement again on every read).
    threshold = int(settings.FANOUT_FOLLOWER_THRESHOLD)
    # Typed: PostgreSQL types a column of a UNION from its first parts, and NULLs alone read as text.
    none = "CAST(NULL AS BIGINT)"
    newest, newest_join = (
        (none, "")
        if redis_enabled()
        else ("ns.newest_post_id", f" LEFT JOIN {stats} ns ON ns.user_id = f.followee_id")
    )
    find = "strpos" if connection.vendor == "postgresql" else "instr"
    home_filter = f"{find}(kf.context, '{FilterContext.HOME.value}')"
    big = f"SELECT s.user_id FROM {stats} s WHERE s.followers_count > {threshold}"  # noqa: S608
    floor_from = ""
    if not redis_enabled():
        # Only the big authors who posted at or above the entry the page's stored read ends on (`fl`,
        # see `_floor_cte`): the others cannot reach the page, and probing the reader's follows for each
        # of the accounts above the threshold was most of this statement's work.
        big += " AND (s.newest_post_id IS NULL OR s.newest_post_id >= fl.bottom)"
        floor_from = "fl CROSS JOIN "
    return [
        f"SELECT 'b', st.user_id, {none} FROM {state} st WHERE st.user_id = {user}"  # noqa: S608
        " AND st.built_at IS NOT NULL AND st.last_read_at >= %s",
        f"SELECT 's', st.user_id, {none} FROM {state} st WHERE st.user_id = {user} AND st.last_read_at < %s",  # noqa: S608
        f"SELECT 'h', bk.blocked_id, {none} FROM {block} bk WHERE bk.blocker_id = {user}",  # noqa: S608
        f"SELECT 'h', bk.blocker_id, {none} FROM {block} bk WHERE bk.blocked_id = {user}",  # noqa: S608
        # A mute that has ended hides nothing, even before the sweep deletes it. Its end is compared
        # with a parameter (now), so the text stays the same for every reader; 'u' marks one with an end
        # (hidden until then).
        f"SELECT CASE WHEN mu.expires_at IS NULL THEN 'h' ELSE 'u' END, mu.muted_id, {none}"  # noqa: S608
        f" FROM {mute} mu WHERE mu.muter_id = {user} AND (mu.expires_at IS NULL OR mu.expires_at > %s)",
        # The few accounts above the threshold come first, from the index on the counter, once; then
        # the reader's follows are kept to those (on PostgreSQL one scan of the reader's follows with the
        # array in its index condition). A counter read per follow cost a key lookup for each of them.
        # Marked 'n' rather than 'm' when the follow hides the author's plain reposts. Without Redis,
        # with each the author's newest post id (a key lookup for each of these few; with Redis their
        # indexes answer, see `_page`).
        # Whether the follow hides plain reposts is looked up in the partial index of the follows that
        # do (a few rows) rather than read from each row: the follows are then read from the (follower,
        # followee) index alone, one range of the reader's. On PostgreSQL the followee is compared as an
        # expression (`+ 0`), so that the covering index of the other order (`follow_followee_cover`),
        # which it preferred by its estimates, is not descended once for every big author instead:
        # 35 buffers against 164 for a reader following 13 of 52, and a sixth of the read's backend CPU.
        f"SELECT CASE WHEN h.follower_id IS NULL THEN 'm' ELSE 'n' END, f.followee_id, {newest}"  # noqa: S608
        f" FROM {floor_from}{follow} f LEFT JOIN {follow} h ON h.follower_id = f.follower_id"
        f" AND h.followee_id = f.followee_id AND NOT h.show_reblogs{newest_join}"
        f" WHERE f.follower_id = {user} AND f.followee_id"
        + (" + 0 = ANY(ARRAY({big}))" if connection.vendor == "postgresql" else " IN ({big})").format(
            big=big
        ),
        # Without Redis, the floor the big authors were kept to ('f'; 0: not kept to any).
        *([f"SELECT 'f', fl.bottom, {none} FROM fl"] if floor_from else []),  # noqa: S608
        # A keyword filter of the home timeline in force ('k'): one probe of the owner index, empty for
        # most readers. Its end is compared with a parameter, as the mute's is; its context in the text
        # (a LIKE with a bound pattern made SQLite prepare the whole statement again on every read).
        f"SELECT 'k', kf.owner_id, {none} FROM {filters} kf WHERE kf.owner_id = {user}"  # noqa: S608
        f" AND {home_filter} > 0 AND (kf.expires_at IS NULL OR kf.expires_at > %s)",
    ]


def _floor_cte(user: str) -> str:
    """`fl (bottom)`: without Redis, the id of the last entry a page's stored read takes (its parameters:
    whether the context is read for a page, the read's upper bound, the entries it takes less one),
    0 when it is not read for a page or the timeline holds fewer entries than the read takes."""
    entries = connection.ops.quote_name(TimelineEntry._meta.db_table)
    return (
        "fl (bottom) AS (SELECT CASE WHEN %s THEN COALESCE((SELECT e.post_id"  # noqa: S608
        f" FROM {entries} e WHERE e.user_id = {user} AND e.post_id < %s"
        " ORDER BY e.post_id DESC LIMIT 1 OFFSET %s), 0) ELSE 0 END)"
    )


_UNBOUNDED = 2**63 - 1


def _floor_params(page: "PageAsk | None") -> list[Any]:
    if redis_enabled():
        return []
    if page is None:
        return [False, _UNBOUNDED, 0]
    return [True, _UNBOUNDED if page.upper is None else page.upper, page.entries - 1]


def _context_sql() -> str:
    selects = " UNION ALL ".join(_context_selects("%s"))
    return selects if redis_enabled() else f"WITH {_floor_cte('%s')} {selects}"


def _context_params() -> list[Any]:
    """The parameters of the context query other than the reader, in order: the cutoffs of an active
    timeline and of a due read stamp, the time a mute must end after to still hide, and the time a home
    filter's end must be after."""
    now = timezone.now()
    cutoff, stamp, at = db_datetimes([active_cutoff(now), now - READ_STAMP_EVERY, now])
    return [cutoff, stamp, at, at]


def _context_of(rows: Iterable[Sequence[Any]]) -> ReadContext:
    hidden: set[int] = set()
    for_now: set[int] = set()
    merged: set[int] = set()
    quiet: set[int] = set()
    marks: set[str] = set()
    newest: dict[int, int] = {}
    floor: int | None = None
    for mark, other_id, newest_id, *_ in rows:
        if mark == "h":
            hidden.add(other_id)
        elif mark == "u":
            for_now.add(other_id)
        elif mark == "f":
            floor = int(other_id) or None
        elif mark == "m" or mark == "n":
            merged.add(other_id)
            if mark == "n":
                quiet.add(other_id)
            if newest_id is not None:
                newest[other_id] = int(newest_id)
        else:
            marks.add(mark)
    muted_for_now = for_now - hidden
    hidden |= for_now
    return ReadContext(
        hidden=frozenset(hidden),
        merged_authors=tuple(sorted(merged - hidden)),
        built="b" in marks,
        stamp_due="s" in marks,
        reblogs_hidden=frozenset(quiet - hidden),
        newest=tuple(
            sorted((author_id, post_id) for author_id, post_id in newest.items() if author_id not in hidden)
        ),
        muted_for_now=frozenset(muted_for_now),
        filtered="k" in marks,
        authors_floor=floor,
    )


def read_context(user_id: int, page: PageAsk | None = None) -> ReadContext:
    """Everything a home read needs to know before touching the store, in one query: the timeline's
    state, authors hidden from `user_id` (blocks either way, mutes not ended) and followed authors
    above the fan-out threshold (without Redis, for a `page`, only those that can reach it). Written
    as SQL because it runs on every read and compiling it as six querysets cost more than running it."""
    built_cutoff, stamp_cutoff, mute_cutoff, filter_cutoff = _context_params()
    params = _floor_params(page)
    if params:  # the CTE's reader comes after its first parameter
        params.insert(1, user_id)
    params += [user_id, built_cutoff, user_id, stamp_cutoff, user_id, user_id, user_id, mute_cutoff, user_id]
    params += [user_id, filter_cutoff]
    return _context_of(fetch_rows(_context_sql(), params))


class TokenReader(NamedTuple):
    user_id: int
    scopes: str
    context: ReadContext


_token_statements: dict[tuple[str, int, bool], str] = {}


def _token_context_sql() -> str:
    key = (db_vendor(), int(settings.FANOUT_FOLLOWER_THRESHOLD), redis_enabled())
    sql = _token_statements.get(key)
    if sql is None:
        # The token's row first (the accounts app's own statement), then the context query's parts for
        # its user, each joined to it.
        reader_parts = [
            part.replace(" FROM ", ", NULL FROM t CROSS JOIN ", 1) for part in _context_selects("t.reader")
        ]
        floor = "" if redis_enabled() else ", " + _floor_cte("(SELECT reader FROM t)")  # noqa: S608
        sql = _token_statements[key] = (
            f"WITH t (reader, scopes) AS ({access_token_viewer_sql()}){floor}"  # noqa: S608
            " SELECT 't', t.reader, CAST(NULL AS BIGINT), t.scopes FROM t UNION ALL "
            + " UNION ALL ".join(reader_parts)
        )
    return sql


def token_read_context(raw_token: str, page: PageAsk | None = None) -> TokenReader | None:
    """The reader a bearer token belongs to, its granted scopes and its home read context, in one
    statement; None for a token that is unknown, revoked, not a user's, or whose user is deactivated.

    The token is read on every call (nothing is cached), so revoking it takes effect at once.
    """
    token = access_token_viewer_params(raw_token)
    if token is None:
        return None
    params = [*token, *_floor_params(page), *_context_params()]
    rows = fetch_rows(_token_context_sql(), params)
    found = [row for row in rows if row[0] == "t"]
    if not found:
        return None
    _, user_id, _, scopes = found[0]
    return TokenReader(int(user_id), str(scopes), _context_of(row for row in rows if row[0] != "t"))


def bounds_of(max_id: int | None, since_id: int | None, min_id: int | None) -> Bounds:
    if min_id is not None:
        return Bounds(upper=max_id, lower=min_id, ascending=True)
    return Bounds(upper=max_id, lower=since_id, ascending=False)


def posts_as_entries(posts: "QuerySet[Post]", limit: int) -> list[Entry]:
    """The first `limit` of `posts` (already ordered) as timeline entries."""
    rows = posts.annotate(origin_author=Coalesce(F("root__author_id"), F("author_id"))).values_list(
        "id", "author_id", "origin_author"
    )
    return [Entry(*row) for row in rows[:limit]]


def authors_posts(
    author_ids: Sequence[int], bounds: Bounds, count: int, *, reblogs_hidden: Collection[int] = ()
) -> list[Entry]:
    """The newest (or, ascending, the next) `count` home-timeline posts of `author_ids` inside `bounds`,
    leaving out the plain reposts of those among `reblogs_hidden`.

    One short walk of the (author, id) index per author, all in one statement, then merged here: a
    single query over all the authors at once made the database gather and sort every post they ever
    wrote (about a second per read with fifty prolific authors among a million posts).
    """
    if not author_ids:
        return []
    vendor = db_vendor()
    postgres = vendor == "postgresql"
    quiet = tuple(author_id in reblogs_hidden for author_id in author_ids) if reblogs_hidden else ()
    has_quiet = any(quiet)
    bound_params: list[Any] = [PostKind.COMMENT.value]
    if bounds.upper is not None:
        bound_params.append(bounds.upper)
    if bounds.lower is not None:
        bound_params.append(bounds.lower)
    shape = (
        vendor,
        bounds.upper is not None,
        bounds.lower is not None,
        bounds.ascending,
        int(count),
        has_quiet if postgres else (quiet or len(author_ids)),
    )
    sql = _AUTHORS_WALKS.get(shape)
    if sql is None:
        sql = _authors_walk_sql(shape[:5], postgres, quiet or (False,) * len(author_ids), has_quiet)
        if len(_AUTHORS_WALKS) > 512:
            _AUTHORS_WALKS.clear()
        _AUTHORS_WALKS[shape] = sql
    if postgres:
        params: list[Any] = [list(author_ids), *bound_params]
        if has_quiet:
            params += [PostKind.REPOST.value, [a for a, q in zip(author_ids, quiet, strict=True) if q]]
        # Planned with its actual values, not prepared: a generic plan, blind to the limit, chose to
        # gather and sort every post of the authors.
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    else:
        params = []
        for index, author_id in enumerate(author_ids):
            params += [author_id, *bound_params]
            if quiet and quiet[index]:
                params.append(PostKind.REPOST.value)
        rows = fetch_rows(sql, params)
    found = list(map(Entry._make, rows))
    found.sort(key=_post_id_of, reverse=not bounds.ascending)
    return found[:count]


_AUTHORS_WALKS: dict[tuple[Any, ...], str] = {}


def _post_id_of(entry: Entry) -> int:
    return entry.post_id


def _authors_walk_sql(shape: tuple[Any, ...], postgres: bool, quiet: Sequence[bool], has_quiet: bool) -> str:
    """The statement of `authors_posts` for a shape: (vendor, has upper, has lower, ascending, count),
    one walk per author on SQLite (`quiet`: whether each hides plain reposts), one lateral walk over an
    array of authors on PostgreSQL."""
    _, upper, lower, ascending, count = shape
    posts = connection.ops.quote_name(Post._meta.db_table)
    # "Not a comment" (the same posts as "original or repost") leaves the planner nothing to use but
    # the (author, id) index, walked newest first and stopped at the limit.
    where = ["p.author_id = {author}", "p.kind <> %s", "p.deleted_at IS NULL"]
    if upper:
        where.append("p.id < %s")
    if lower:
        where.append("p.id > %s")
    # "Not a plain repost", written only when an author needs it, so the usual statement stays the same.
    not_plain = "p.kind <> %s OR p.comment <> ''"
    if has_quiet and postgres:
        where.append(f"({not_plain} OR p.author_id <> ALL(%s::bigint[]))")
    order = "ASC" if ascending else "DESC"
    one = (
        f"SELECT p.id, p.author_id, COALESCE(r.author_id, p.author_id) FROM {posts} p"  # noqa: S608
        f" LEFT JOIN {posts} r ON r.id = p.root_id WHERE {' AND '.join(where)}{{plain}}"
        f" ORDER BY p.id {order} LIMIT {int(count)}"
    )
    if postgres:
        return (
            "SELECT x.* FROM unnest(%s::bigint[]) AS a(id) CROSS JOIN LATERAL ("  # noqa: S608
            + one.format(author="a.id", plain="")
            + ") AS x"
        )
    return " UNION ALL ".join(
        f"SELECT * FROM ({one.format(author='%s', plain=f' AND ({not_plain})' if hides else '')})"  # noqa: S608
        f" AS a{index}"
        for index, hides in enumerate(quiet)
    )


def merge_entries(
    lists: Iterable[Sequence[Entry]], hidden: frozenset[int], bounds: Bounds, limit: int
) -> list[int]:
    """Post ids newest first: deduplicated, hidden authors dropped, the page's `limit` kept."""
    seen: dict[int, Entry] = {}
    for entries in lists:
        for entry in entries:
            if entry.author_id in hidden or entry.origin_author_id in hidden:
                continue
            if bounds.upper is not None and entry.post_id >= bounds.upper:
                continue
            if bounds.lower is not None and entry.post_id <= bounds.lower:
                continue
            seen[entry.post_id] = entry
    ordered = sorted(seen, reverse=True)
    return ordered[-limit:] if bounds.ascending else ordered[:limit]


def home_posts(user_id: int, hidden: Collection[int] = frozenset()) -> "QuerySet[Post]":
    """Every post a home timeline of `user_id` would hold, unordered: their own and their follows'
    posts and reposts (a follow's plain reposts only if it shows them), none by an author in `hidden`."""
    followees = Follow.objects.filter(follower_id=user_id).values("followee_id")
    reblogs_hidden = Follow.objects.filter(follower_id=user_id, show_reblogs=False).values("followee_id")
    return (
        Post.objects.filter(Q(author_id__in=followees) | Q(author_id=user_id))
        # "Not a comment" rather than "kind in (original, repost)", the same posts: an equality on
        # kind drew SQLite to the kind index (a walk over every post) instead of the authors' own,
        # 3-4x slower for a rebuild on a million posts.
        .filter(deleted_at__isnull=True)
        .exclude(kind=PostKind.COMMENT)
        .exclude(author_id__in=hidden)
        .exclude(kind=PostKind.REPOST, comment="", author_id__in=reblogs_hidden)
    )


def rebuild_entries(user_id: int, hidden: frozenset[int] = frozenset()) -> list[Entry]:
    """What a fresh home timeline holds: the newest posts of the user and their follows, up to the cap."""
    posts = home_posts(user_id, hidden).order_by("-id")
    return [
        entry
        for entry in posts_as_entries(posts, settings.TIMELINE_CAP)
        if entry.origin_author_id not in hidden
    ]


def home_page_from_posts(user_id: int, context: ReadContext, bounds: Bounds, limit: int) -> list[int]:
    """A home page read from the posts table alone, as a rebuild would fill the timeline: the answer
    while Redis, which holds the timelines, cannot be reached. One query over the reader's follows'
    posts, slower than the stored timeline but the same page."""
    posts = home_posts(user_id, context.hidden)
    if bounds.upper is not None:
        posts = posts.filter(id__lt=bounds.upper)
    if bounds.lower is not None:
        posts = posts.filter(id__gt=bounds.lower)
    posts = posts.order_by("id" if bounds.ascending else "-id")
    return merge_entries([posts_as_entries(posts, limit + READ_SLACK)], context.hidden, bounds, limit)


def home_timeline_rebuild(*, user_id: int, hidden: frozenset[int] = frozenset()) -> list[Entry]:
    """Mark the timeline built and active, then fill it from follows; returns the entries written.

    The state is stamped first so a post fanned out while the rebuild runs is delivered, not missed.
    """
    now = timezone.now()
    TimelineState.objects.update_or_create(user_id=user_id, defaults={"last_read_at": now, "built_at": now})
    entries = rebuild_entries(user_id, hidden)
    timeline_store().rebuild(user_id, entries)
    return entries


def home_timeline_ids(
    user_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Post ids of the user's home timeline page, newest first."""
    context = read_context(user_id, page_ask(max_id=max_id, min_id=min_id, limit=limit))
    return home_timeline_ids_in(
        user_id, context, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit
    )


def page_ask(*, max_id: int | None, min_id: int | None, limit: int) -> PageAsk | None:
    """What a read context needs to know of a page to leave out the big authors that cannot reach it:
    nothing for a page read upwards (`min_id`), whose stored read starts at its lower end."""
    return None if min_id is not None else PageAsk(upper=max_id, entries=limit + READ_SLACK)


def home_timeline_ids_in(
    user_id: int,
    context: ReadContext,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """`home_timeline_ids` with the read context already in hand (see `token_read_context`).

    Entries of an author hidden since they were delivered (a block or mute made while a post of theirs
    was being fanned out) are dropped at read; a page that loses more of them than the read's slack
    reads on past them, so a page comes back short only at the end of the timeline.
    """
    bounds = bounds_of(max_id, since_id, min_id)
    if redis_enabled():
        try:
            return _stored_page(user_id, context, bounds, limit)
        except REDIS_UNREACHABLE as exc:
            # The timelines are a copy: readers keep their home while Redis is away, read from the
            # posts; the stored one is rebuilt or read again once it is back.
            unreachable_logged(log, "home timelines read from the posts", exc)
            return home_page_from_posts(user_id, context, bounds, limit)
    return _stored_page(user_id, context, bounds, limit)


def _stored_page(user_id: int, context: ReadContext, bounds: Bounds, limit: int) -> list[int]:
    """`home_timeline_ids_in` from the stored timeline and the merged authors."""
    count = limit + READ_SLACK
    ids, edge = _page(user_id, context, bounds, limit, count)
    context = context._replace(stamp_due=False)  # the first read stamped it
    for _ in range(MORE_READS):
        if edge is None or len(ids) >= limit:
            break
        if context.authors_floor is not None:
            # Reading on below the first read's floor: the big authors left out for it may reach there.
            context = read_context(user_id)._replace(stamp_due=False)
        count *= 2  # each time further: what was read was mostly hidden
        if bounds.ascending:  # the entries just above those read, the oldest of them first
            bounds = Bounds(upper=bounds.upper, lower=edge, ascending=True)
            more, edge = _page(user_id, context, bounds, limit - len(ids), count)
            ids = more + ids
        else:
            bounds = Bounds(upper=edge, lower=bounds.lower, ascending=False)
            more, edge = _page(user_id, context, bounds, limit - len(ids), count)
            ids = ids + more
    return ids


def _page(
    user_id: int, context: ReadContext, bounds: Bounds, limit: int, count: int
) -> tuple[list[int], int | None]:
    """One read of a page of `limit` from `count` stored entries: its post ids, and where the stored
    timeline goes on (the id of the last entry read, in the page's direction) when the read took as
    many entries as it asked for, else None."""
    store = timeline_store()
    stored: list[Entry] | None = None
    merged: list[Entry] | None = None
    # With Redis the big authors come from their indexes, except those whose plain reposts the reader
    # hides: an index cannot tell a plain repost from a quote, so theirs are read from the posts table.
    indexed = context.merged_authors
    if context.reblogs_hidden and redis_enabled():
        indexed = tuple(author_id for author_id in indexed if author_id not in context.reblogs_hidden)
    if context.built and indexed and not bounds.ascending and isinstance(store, RedisTimelineStore):
        # The timeline and the big authors' indexes in one round trip, the authors only as deep as
        # the page can reach.
        authors = indexed
        (reply,) = scripts_run([home_with_authors_call(home_key(user_id), authors, bounds, count, limit)])
        stored, merged = home_with_authors_reply(reply, authors, bounds, limit, authors_posts)
    elif context.built:
        stored = store.read(user_id, bounds, count)
    if stored is not None and context.stamp_due:
        TimelineState.objects.filter(user_id=user_id).update(last_read_at=timezone.now())
    edge = None
    if stored is None:
        # The whole timeline; an author muted for now stays in it (see `ReadContext.muted_for_now`).
        stored = home_timeline_rebuild(user_id=user_id, hidden=context.hidden - context.muted_for_now)
        if context.authors_floor is not None:  # kept to the entries there were before the rebuild
            context = read_context(user_id)._replace(stamp_due=False)
    elif len(stored) >= count:
        edge = stored[0].post_id if bounds.ascending else stored[-1].post_id
        # Past the last entry read, the stored timeline may hold entries not read yet: merged posts
        # beyond it belong to a later read (or page), after those entries.
        bounds = bounds._replace(upper=edge + 1) if bounds.ascending else bounds._replace(lower=edge - 1)
    lists: list[Sequence[Entry]] = [stored]
    if merged is not None:
        lists.append(merged)
    elif redis_enabled():
        if indexed:
            lists.append(authors_recent(indexed, bounds, limit, authors_posts))
    else:
        walked = authors_reaching(context.merged_authors, context.newest, bounds)
        if walked:
            lists.append(authors_posts(walked, bounds, limit, reblogs_hidden=context.reblogs_hidden))
    if context.reblogs_hidden and redis_enabled():
        quiet = authors_reaching(sorted(context.reblogs_hidden), context.newest, bounds)
        if quiet:
            lists.append(authors_posts(quiet, bounds, limit, reblogs_hidden=context.reblogs_hidden))
    return merge_entries(lists, context.hidden, bounds, limit), edge


def authors_reaching(
    author_ids: Sequence[int], newest: Iterable[tuple[int, int]], bounds: Bounds
) -> Sequence[int]:
    """Those of `author_ids` that may have a post above the page's lower bound: an author whose newest
    post (`newest`: (author, post id) pairs) is at or below it has none there, and their posts are not
    walked. Authors whose newest post is not known are kept."""
    if bounds.lower is None:
        return author_ids
    known = dict(newest)
    return [author_id for author_id in author_ids if known.get(author_id, bounds.lower + 1) > bounds.lower]


def home_timeline_add_author(*, user_id: int, author_id: int, count: int = 100) -> None:
    """After a follow: the followee's recent posts enter the follower's timeline, if it is built (their
    plain reposts only if the follow shows them)."""
    if not TimelineState.objects.filter(user_id=user_id, built_at__isnull=False).exists():
        return  # the first read builds it from follows, this one included
    posts = Post.objects.filter(author_id=author_id, kind__in=HOME_KINDS, deleted_at__isnull=True)
    if Follow.objects.filter(follower_id=user_id, followee_id=author_id, show_reblogs=False).exists():
        posts = posts.exclude(kind=PostKind.REPOST, comment="")
    timeline_store().add(user_id, posts_as_entries(posts.order_by("-id"), count))


def home_timeline_drop_reblogs(*, user_id: int, author_id: int) -> None:
    """After a follow stopped showing the followee's reposts: their plain reposts already delivered
    leave the follower's timeline (their quotes stay). Nothing to do for a timeline not built."""
    store = timeline_store()
    # The whole timeline: the database store may briefly hold a little more than the cap.
    entries = store.read(user_id, Bounds(), 2 * settings.TIMELINE_CAP)
    theirs = {entry.post_id: entry for entry in entries or [] if entry.author_id == author_id}
    if not theirs:
        return
    plain = Post.objects.filter(id__in=list(theirs), kind=PostKind.REPOST, comment="")
    store.remove_entries(user_id, [theirs[post_id] for post_id in plain.values_list("id", flat=True)])


def home_timeline_drop_authors(*, user_id: int, author_ids: Iterable[int], with_reposts: bool) -> None:
    """After an unfollow the authors' posts leave the timeline; after a block or mute, reposts of them too."""
    timeline_store().remove_authors(user_id, set(author_ids), with_reposts=with_reposts)
