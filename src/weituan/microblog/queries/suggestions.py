"""Accounts to find: follow suggestions (first those the accounts you follow follow, the most shared
first; then the most followed accounts; never yourself, an account you follow or asked to follow, nor
one hidden from you: a block either way, a mute), and the directory of accounts that chose to be found."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q

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


def directory_ids(viewer: Any, *, order: str = "active", offset: int = 0, limit: int = 40) -> list[int]:
    """Accounts that chose to be found (`discoverable`), as Mastodon's profile directory lists them:
    `active` by their latest post (those that never posted last), `new` by sign-up, newest first. Hidden
    accounts (a block either way, a mute) are left out for a viewer."""
    rows = get_user_model().objects.filter(is_active=True, discoverable=True)
    if viewer is not None:
        rows = rows.exclude(pk__in=hidden_author_ids(viewer.pk))
    if order == "new":
        rows = rows.order_by("-date_joined", "-pk")
    else:
        rows = rows.order_by(F("microblog_stats__last_post_at").desc(nulls_last=True), "-pk")
    return list(rows.values_list("pk", flat=True)[offset : offset + limit])
