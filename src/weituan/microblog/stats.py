"""Per-account counters (followers, following, posts): bumped inside the write that changes them."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from weituan.microblog.models import AccountStats

_FIELDS = ("followers_count", "following_count", "posts_count")


@dataclass(frozen=True, slots=True)
class AccountCounts:
    followers: int = 0
    following: int = 0
    posts: int = 0
    last_post_at: datetime | None = None


def account_stats_bump(*, user_id: int, followers: int = 0, following: int = 0, posts: int = 0) -> None:
    """Add the deltas to the counters, creating the row on first use. Call inside the writing transaction."""
    deltas = {"followers_count": followers, "following_count": following, "posts_count": posts}
    changes: dict[str, object] = {name: F(name) + delta for name, delta in deltas.items() if delta}
    if not changes:
        return
    if posts > 0:
        changes["last_post_at"] = timezone.now()
    if AccountStats.objects.filter(user_id=user_id).update(**changes):
        return
    try:
        with transaction.atomic():
            AccountStats.objects.create(
                user_id=user_id,
                **{name: max(delta, 0) for name, delta in deltas.items()},
                last_post_at=timezone.now() if posts > 0 else None,
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
