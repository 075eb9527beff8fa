"""Per-account counters (followers, following, posts) and topics' use counters: bumped inside the
write that changes them."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from weituan.microblog.models import AccountStats, Topic, TopicCount

_FIELDS = ("followers_count", "following_count", "posts_count")

# How many shares a topic's counter is split into on PostgreSQL. A database connection counts in one
# share (its backend's process id picks it), so two posts of one topic, written at once on different
# connections, rarely lock the same row; a topic's count is read from at most this many rows.
TOPIC_SHARDS = 32
# The share of the connection running a statement (PostgreSQL), as SQL.
TOPIC_SHARD_SQL = f"mod(pg_backend_pid(), {TOPIC_SHARDS})"


@dataclass(frozen=True, slots=True)
class AccountCounts:
    followers: int = 0
    following: int = 0
    posts: int = 0
    last_post_at: datetime | None = None


def account_stats_bump(
    *, user_id: int, followers: int = 0, following: int = 0, posts: int = 0, post_id: int | None = None
) -> None:
    """Add the deltas to the counters, creating the row on first use; `post_id` is the new post a
    positive `posts` counts (the account's newest post id moves up to it). Call inside the writing
    transaction."""
    deltas = {"followers_count": followers, "following_count": following, "posts_count": posts}
    changes: dict[str, object] = {name: F(name) + delta for name, delta in deltas.items() if delta}
    if not changes:
        return
    if posts > 0:
        changes["last_post_at"] = timezone.now()
        if post_id is not None:
            changes["newest_post_id"] = Greatest(Coalesce(F("newest_post_id"), Value(0)), Value(post_id))
    if AccountStats.objects.filter(user_id=user_id).update(**changes):
        return
    try:
        with transaction.atomic():
            AccountStats.objects.create(
                user_id=user_id,
                **{name: max(delta, 0) for name, delta in deltas.items()},
                last_post_at=timezone.now() if posts > 0 else None,
                newest_post_id=post_id if posts > 0 else None,
            )
    except IntegrityError:
        # Another writer created the row first; apply the change to it.
        AccountStats.objects.filter(user_id=user_id).update(**changes)


def account_counts(user_ids: list[int]) -> dict[int, AccountCounts]:
    """Counters for each id (zeros for users who have none yet), in one query."""
    found = {
        row["user_id"]: AccountCounts(
            followers=row["followers_count"],
            following=row["following_count"],
            posts=row["posts_count"],
            last_post_at=row["last_post_at"],
        )
        for row in AccountStats.objects.filter(user_id__in=user_ids).values(
            "user_id", "last_post_at", *_FIELDS
        )
    }
    return {user_id: found.get(user_id, AccountCounts()) for user_id in user_ids}


def statuses_total() -> int:
    """How many statuses the accounts have in all: the sum of their counters, as their profiles show
    them (one aggregate over a row per account, not a count of the posts)."""
    return int(AccountStats.objects.aggregate(total=Sum("posts_count"))["total"] or 0)


@dataclass(frozen=True, slots=True)
class TopicCounts:
    posts: int = 0
    last_used_at: datetime | None = None


def topic_counts(topic_ids: Sequence[int]) -> dict[int, TopicCounts]:
    """How many live posts use each topic and when it was last used: its row's count and its shares'
    (zeros for ids that name no topic). Two queries."""
    rows = Topic.objects.filter(id__in=topic_ids).values_list("id", "posts_count", "last_used_at")
    found = {topic_id: TopicCounts(posts, last) for topic_id, posts, last in rows}
    shares = (
        TopicCount.objects.filter(topic_id__in=list(found))
        .values("topic_id")
        .annotate(posts=Sum("posts_count"), last=Max("last_used_at"))
        .values_list("topic_id", "posts", "last")
    )
    for topic_id, posts, last in shares:
        own = found[topic_id]
        latest = max((moment for moment in (own.last_used_at, last) if moment is not None), default=None)
        # Two deletes racing on a topic's last use may each take it back: never shown below zero.
        found[topic_id] = TopicCounts(max(own.posts + (posts or 0), 0), latest)
    return {topic_id: found.get(topic_id, TopicCounts()) for topic_id in topic_ids}


def _shares_add_sql(rows: int) -> str:
    counts = connection.ops.quote_name(TopicCount._meta.db_table)
    values = ", ".join([f"(%s, {TOPIC_SHARD_SQL}, %s, %s::timestamptz)"] * rows)
    return (
        f"INSERT INTO {counts} (topic_id, shard, posts_count, last_used_at) VALUES {values}"  # noqa: S608
        " ON CONFLICT (topic_id, shard) DO UPDATE SET"
        f" posts_count = {counts}.posts_count + EXCLUDED.posts_count,"
        f" last_used_at = GREATEST({counts}.last_used_at, EXCLUDED.last_used_at)"
    )


def topic_uses_count(*, topic_ids: Sequence[int], moment: datetime) -> None:
    """Count one use of each topic, used at `moment`, in one statement. Call inside the writing
    transaction, with the ids in the order every write takes them (by topic name)."""
    if not topic_ids:
        return
    if connection.vendor != "postgresql":
        for topic_id in topic_ids:
            Topic.objects.filter(id=topic_id).update(posts_count=F("posts_count") + 1, last_used_at=moment)
        return
    params: list[Any] = []
    for topic_id in topic_ids:
        params += [topic_id, 1, moment]
    with connection.cursor() as cursor:
        cursor.execute(_shares_add_sql(len(topic_ids)), params)


def topic_use_release(*, topic_id: int) -> None:
    """Take one use (a deleted post's) off the topic's counter, unless it already counts none."""
    if connection.vendor != "postgresql":
        Topic.objects.filter(id=topic_id, posts_count__gt=0).update(posts_count=F("posts_count") - 1)
        return
    counts = connection.ops.quote_name(TopicCount._meta.db_table)
    topics = connection.ops.quote_name(Topic._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {counts} (topic_id, shard, posts_count, last_used_at)"  # noqa: S608
            f" SELECT t.id, {TOPIC_SHARD_SQL}, -1, NULL FROM {topics} t WHERE t.id = %s"
            f" AND t.posts_count + COALESCE((SELECT SUM(c.posts_count) FROM {counts} c"
            " WHERE c.topic_id = t.id), 0) > 0"
            f" ON CONFLICT (topic_id, shard) DO UPDATE SET posts_count = {counts}.posts_count - 1",
            [topic_id],
        )
