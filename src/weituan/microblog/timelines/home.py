"""The home timeline: read from the store, merge in followed high-follower authors, rebuild when stale.

A read costs a fixed number of queries whatever the page size: one query for the timeline's state, the
hidden authors and the followed high-follower authors together; the store read (one indexed query, or
one Redis round trip); and the high-follower authors' posts when there are any.
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from weituan.microblog.models import Block, Follow, Mute, Post
from weituan.microblog.timelines.fanout import HOME_KINDS, active_cutoff
from weituan.microblog.timelines.models import TimelineState
from weituan.microblog.timelines.store import Bounds, Entry, timeline_store

# Reading a few more entries than asked absorbs those dropped for a block or mute made since delivery.
READ_SLACK = 10
# Recording every read would turn each timeline read into a write; an hour is precise enough for
# deciding who is active over FANOUT_ACTIVE_DAYS.
READ_STAMP_EVERY = timedelta(hours=1)


class ReadContext(NamedTuple):
    hidden: frozenset[int]
    merged_authors: tuple[int, ...]
    built: bool  # the stored timeline is built and its owner active, so fan-out keeps it current
    stamp_due: bool  # the last recorded read is older than READ_STAMP_EVERY


def read_context(user_id: int) -> ReadContext:
    """Everything a home read needs to know before touching the store, in one query: the timeline's
    state, authors hidden from `user_id` (blocks either way, mutes) and followed authors above the
    fan-out threshold."""
    now = timezone.now()
    state = TimelineState.objects.filter(user_id=user_id)
    parts = [
        state.filter(built_at__isnull=False, last_read_at__gte=active_cutoff()).values_list(
            Value("b"), "user_id"
        ),
        state.filter(last_read_at__lt=now - READ_STAMP_EVERY).values_list(Value("s"), "user_id"),
        Block.objects.filter(blocker_id=user_id).values_list(Value("h"), "blocked_id"),
        Block.objects.filter(blocked_id=user_id).values_list(Value("h"), "blocker_id"),
        Mute.objects.filter(muter_id=user_id).values_list(Value("h"), "muted_id"),
        Follow.objects.filter(
            follower_id=user_id,
            followee__microblog_stats__followers_count__gt=settings.FANOUT_FOLLOWER_THRESHOLD,
        ).values_list(Value("m"), "followee_id"),
    ]
    hidden: set[int] = set()
    merged: set[int] = set()
    marks: set[str] = set()
    for mark, other_id in parts[0].union(*parts[1:], all=True):
        if mark == "h":
            hidden.add(other_id)
        elif mark == "m":
            merged.add(other_id)
        else:
            marks.add(mark)
    return ReadContext(
        hidden=frozenset(hidden),
        merged_authors=tuple(sorted(merged - hidden)),
        built="b" in marks,
        stamp_due="s" in marks,
    )


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


def authors_posts(author_ids: Sequence[int], bounds: Bounds, count: int) -> list[Entry]:
    """The newest (or, ascending, the next) `count` home-timeline posts of `author_ids` inside `bounds`."""
    posts = Post.objects.filter(author_id__in=author_ids, kind__in=HOME_KINDS, deleted_at__isnull=True)
    if bounds.upper is not None:
        posts = posts.filter(id__lt=bounds.upper)
    if bounds.lower is not None:
        posts = posts.filter(id__gt=bounds.lower)
    return posts_as_entries(posts.order_by("id" if bounds.ascending else "-id"), count)


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


def rebuild_entries(user_id: int, hidden: frozenset[int] = frozenset()) -> list[Entry]:
    """What a fresh home timeline holds: the newest posts of the user and their follows, up to the cap."""
    followees = Follow.objects.filter(follower_id=user_id).values("followee_id")
    posts = (
        Post.objects.filter(Q(author_id__in=followees) | Q(author_id=user_id))
        .filter(kind__in=HOME_KINDS, deleted_at__isnull=True)
        .exclude(author_id__in=hidden)
        .order_by("-id")
    )
    return [
        entry
        for entry in posts_as_entries(posts, settings.TIMELINE_CAP)
        if entry.origin_author_id not in hidden
    ]


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
    context = read_context(user_id)
    bounds = bounds_of(max_id, since_id, min_id)
    stored: list[Entry] | None = None
    if context.built:
        stored = timeline_store().read(user_id, bounds, limit + READ_SLACK)
        if stored is not None and context.stamp_due:
            TimelineState.objects.filter(user_id=user_id).update(last_read_at=timezone.now())
    if stored is None:
        stored = home_timeline_rebuild(user_id=user_id, hidden=context.hidden)
    lists: list[Sequence[Entry]] = [stored]
    if context.merged_authors:
        lists.append(authors_posts(context.merged_authors, bounds, limit))
    return merge_entries(lists, context.hidden, bounds, limit)


def home_timeline_add_author(*, user_id: int, author_id: int, count: int = 100) -> None:
    """After a follow: the followee's recent posts enter the follower's timeline, if it is built."""
    if not TimelineState.objects.filter(user_id=user_id, built_at__isnull=False).exists():
        return  # the first read builds it from follows, this one included
    posts = Post.objects.filter(author_id=author_id, kind__in=HOME_KINDS, deleted_at__isnull=True)
    timeline_store().add(user_id, posts_as_entries(posts.order_by("-id"), count))


def home_timeline_drop_authors(*, user_id: int, author_ids: Iterable[int], with_reposts: bool) -> None:
    """After an unfollow the authors' posts leave the timeline; after a block or mute, reposts of them too."""
    timeline_store().remove_authors(user_id, set(author_ids), with_reposts=with_reposts)
