"""Accounts to follow (Mastodon's follow suggestions): first those the accounts you follow follow, the
most shared first; then the most followed accounts. Never yourself, an account you follow or asked to
follow, nor one hidden from you (a block either way, a mute)."""

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from weituan.microblog.models import AccountStats, Follow, FollowRequest
from weituan.microblog.queries.relations import hidden_author_ids

FRIENDS_OF_FRIENDS = "friends_of_friends"
MOST_FOLLOWED = "most_followed"


@dataclass(frozen=True, slots=True)
class Suggestion:
    user_id: int
    source: str  # FRIENDS_OF_FRIENDS or MOST_FOLLOWED, Mastodon's names for why


def follow_suggestions(viewer: Any, *, limit: int = 40) -> list[Suggestion]:
    """Up to `limit` suggestions for `viewer`, in the order they are best followed. Two queries."""
    followed = Follow.objects.filter(follower_id=viewer.pk).values("followee_id")
    asked = FollowRequest.objects.filter(requester_id=viewer.pk).values("target_id")
    left_out = hidden_author_ids(viewer.pk) | {viewer.pk}
    shared = (
        Follow.objects.filter(follower_id__in=followed, followee__is_active=True)
        .exclude(Q(followee_id__in=followed) | Q(followee_id__in=asked) | Q(followee_id__in=left_out))
        .values("followee_id")
        .annotate(followers=Count("id"))
        .order_by("-followers", "followee_id")[:limit]
    )
    found = [Suggestion(row["followee_id"], FRIENDS_OF_FRIENDS) for row in shared]
    if len(found) < limit:
        picked = left_out | {suggestion.user_id for suggestion in found}
        popular = (
            AccountStats.objects.filter(followers_count__gt=0, user__is_active=True)
            .exclude(Q(user_id__in=followed) | Q(user_id__in=asked) | Q(user_id__in=picked))
            .order_by("-followers_count", "user_id")
            .values_list("user_id", flat=True)[: limit - len(found)]
        )
        found += [Suggestion(user_id, MOST_FOLLOWED) for user_id in popular]
    return found
