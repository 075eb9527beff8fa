"""Relation reads: who follows, blocks and mutes whom, follower lists, and Mastodon's Relationship entity."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, Value

from weituan.microblog.models import Block, Follow, FollowRequest, Mute
from weituan.microblog.queries.paging import id_page


def is_blocked_between(user_a_id: int, user_b_id: int) -> bool:
    """True when either user blocked the other."""
    return Block.objects.filter(
        Q(blocker_id=user_a_id, blocked_id=user_b_id) | Q(blocker_id=user_b_id, blocked_id=user_a_id)
    ).exists()


def is_blocked_with_any(user_id: int, other_ids: Iterable[int]) -> bool:
    """True when `user_id` blocked any of `other_ids`, or any of them blocked `user_id`. One query."""
    others = set(other_ids)
    if not others:
        return False
    return Block.objects.filter(
        Q(blocker_id=user_id, blocked_id__in=others) | Q(blocker_id__in=others, blocked_id=user_id)
    ).exists()


def is_following(follower_id: int, followee_id: int) -> bool:
    return Follow.objects.filter(follower_id=follower_id, followee_id=followee_id).exists()


def followed_among(follower_id: int, ids: Iterable[int]) -> set[int]:
    """Those of `ids` that `follower_id` follows. One query."""
    wanted = set(ids)
    if not wanted:
        return set()
    rows = Follow.objects.filter(follower_id=follower_id, followee_id__in=wanted)
    return set(rows.values_list("followee_id", flat=True))


def blocked_ids(user_id: int) -> set[int]:
    """The accounts `user_id` blocked."""
    return set(Block.objects.filter(blocker_id=user_id).values_list("blocked_id", flat=True))


def muted_ids(user_id: int) -> set[int]:
    """The accounts `user_id` muted, mutes that have ended left out."""
    return set(Mute.objects.filter(muter_id=user_id).in_force().values_list("muted_id", flat=True))


def hidden_author_ids(user_id: int) -> set[int]:
    """Authors whose posts `user_id` does not see: blocked either way, or muted (until the mute ends).
    One query."""
    blocked = Block.objects.filter(blocker_id=user_id).values_list("blocked_id", flat=True)
    blockers = Block.objects.filter(blocked_id=user_id).values_list("blocker_id", flat=True)
    muted = Mute.objects.filter(muter_id=user_id).in_force().values_list("muted_id", flat=True)
    return set(blocked.union(blockers, muted, all=True))


def notification_hidden_actor_ids(user_id: int) -> set[int]:
    """Accounts whose notifications `user_id` does not get: blocked either way, or muted with the mute's
    `hide_notifications` (Mastodon's `notifications=true`), until the mute ends. One query."""
    blocked = Block.objects.filter(blocker_id=user_id).values_list("blocked_id", flat=True)
    blockers = Block.objects.filter(blocked_id=user_id).values_list("blocker_id", flat=True)
    muted = (
        Mute.objects.filter(muter_id=user_id, hide_notifications=True)
        .in_force()
        .values_list("muted_id", flat=True)
    )
    return set(blocked.union(blockers, muted, all=True))


# The strongest reason first: being blocked hides the most (nothing of theirs is known to the viewer).
_HIDING_ORDER = ("blocked_by", "blocking", "muting", "")


def hiding_relations(viewer_id: int, ids: Iterable[int]) -> dict[int, str]:
    """Those of `ids` whose posts `viewer_id` never sees, each with why, in Relationship's words:
    "blocked_by" (they blocked the viewer), else "blocking" (the viewer blocked them), else "muting".
    One query."""
    wanted = set(ids) - {viewer_id}
    if not wanted:
        return {}
    rows = Block.objects.filter(blocked_id=viewer_id, blocker_id__in=wanted).values_list(
        Value("blocked_by"), "blocker_id"
    )
    others = [
        Block.objects.filter(blocker_id=viewer_id, blocked_id__in=wanted).values_list(
            Value("blocking"), "blocked_id"
        ),
        Mute.objects.filter(muter_id=viewer_id, muted_id__in=wanted)
        .in_force()
        .values_list(Value("muting"), "muted_id"),
    ]
    found: dict[int, str] = {}
    for relation, other_id in rows.union(*others, all=True):
        if _HIDING_ORDER.index(str(relation)) < _HIDING_ORDER.index(found.get(int(other_id), "")):
            found[int(other_id)] = str(relation)
    return found


def follower_ids(user_id: int) -> list[int]:
    return list(Follow.objects.filter(followee_id=user_id).values_list("follower_id", flat=True))


def followee_ids(user_id: int) -> list[int]:
    return list(Follow.objects.filter(follower_id=user_id).values_list("followee_id", flat=True))


def familiar_followers(viewer_id: int, account_ids: Iterable[int]) -> dict[int, list[int]]:
    """For each of `account_ids`, the accounts the viewer follows that follow it, most recent follow
    first (Mastodon's familiar followers); accounts hidden from the viewer (a block either way, a mute)
    are left out. One query."""
    wanted = list(dict.fromkeys(account_ids))
    found: dict[int, list[int]] = {account_id: [] for account_id in wanted}
    if not wanted:
        return found
    followed = Follow.objects.filter(follower_id=viewer_id).values("followee_id")
    rows = (
        Follow.objects.filter(followee_id__in=wanted, follower_id__in=followed)
        .exclude(follower_id__in=hidden_author_ids(viewer_id))
        .order_by("-id")
        .values_list("followee_id", "follower_id")
    )
    for account_id, follower_id in rows:
        found[account_id].append(follower_id)
    return found


@dataclass(frozen=True, slots=True)
class RelationRow:
    """One row of a relation list: `cursor` is the relation's own id (lists page by it), `user_id` the account."""

    cursor: int
    user_id: int


@dataclass(frozen=True, slots=True)
class MuteRow(RelationRow):
    """One row of the mute list: the mute's id, the muted account and when the mute ends (None: never)."""

    expires_at: datetime | None = None


def _page(
    rows: Any, user_field: str, *, max_id: int | None, since_id: int | None, min_id: int | None, limit: int
) -> list[RelationRow]:
    page = id_page(
        rows.values_list("id", user_field), max_id=max_id, since_id=since_id, min_id=min_id, limit=limit
    )
    return [RelationRow(cursor=cursor, user_id=user_id) for cursor, user_id in page]


def followers_page(
    user_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[RelationRow]:
    """Who follows `user_id`, newest follow first, paged by follow id."""
    rows = Follow.objects.filter(followee_id=user_id)
    return _page(rows, "follower_id", max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def following_page(
    user_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[RelationRow]:
    """Whom `user_id` follows, newest follow first, paged by follow id."""
    rows = Follow.objects.filter(follower_id=user_id)
    return _page(rows, "followee_id", max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def blocks_page(
    user_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[RelationRow]:
    """Whom `user_id` blocked, newest first, paged by block id."""
    rows = Block.objects.filter(blocker_id=user_id)
    return _page(rows, "blocked_id", max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def mutes_page(
    user_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[MuteRow]:
    """Whom `user_id` muted, newest first, paged by mute id; mutes that have ended are left out. Each
    row says when its mute ends (`expires_at`, None for never)."""
    rows = Mute.objects.filter(muter_id=user_id).in_force().values_list("id", "muted_id", "expires_at")
    page = id_page(rows, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
    return [MuteRow(cursor=cursor, user_id=muted, expires_at=ends) for cursor, muted, ends in page]


def follow_requests_page(
    user_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[RelationRow]:
    """Who asked to follow `user_id` and waits for an answer, newest first, paged by request id."""
    rows = FollowRequest.objects.filter(target_id=user_id)
    return _page(rows, "requester_id", max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def pending_requester_ids(user_id: int) -> list[int]:
    """Every account waiting for `user_id` to answer its follow request, oldest request first."""
    rows = FollowRequest.objects.filter(target_id=user_id).order_by("id")
    return list(rows.values_list("requester_id", flat=True))


def follow_requests_count(user_id: int) -> int:
    return FollowRequest.objects.filter(target_id=user_id).count()


def relationships(viewer_id: int, ids: Iterable[int], *, known_only: bool = False) -> list[dict[str, Any]]:
    """Mastodon's Relationship entity from `viewer_id` to each of `ids`, in order, in one query; with
    `known_only`, as Mastodon answers a client's list, only to those that are active accounts (an
    unknown or deactivated id is left out rather than shown as a stranger)."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        return []
    marks: set[tuple[str, int]] = set()
    queries = [
        Follow.objects.filter(follower_id=viewer_id, followee_id__in=wanted).values_list(
            Value("following"), "followee_id"
        ),
        Follow.objects.filter(followee_id=viewer_id, follower_id__in=wanted).values_list(
            Value("followed_by"), "follower_id"
        ),
        Block.objects.filter(blocker_id=viewer_id, blocked_id__in=wanted).values_list(
            Value("blocking"), "blocked_id"
        ),
        Block.objects.filter(blocked_id=viewer_id, blocker_id__in=wanted).values_list(
            Value("blocked_by"), "blocker_id"
        ),
        Mute.objects.filter(muter_id=viewer_id, muted_id__in=wanted)
        .in_force()
        .values_list(Value("muting"), "muted_id"),
        Mute.objects.filter(muter_id=viewer_id, muted_id__in=wanted, hide_notifications=True)
        .in_force()
        .values_list(Value("muting_notifications"), "muted_id"),
        FollowRequest.objects.filter(requester_id=viewer_id, target_id__in=wanted).values_list(
            Value("requested"), "target_id"
        ),
        FollowRequest.objects.filter(target_id=viewer_id, requester_id__in=wanted).values_list(
            Value("requested_by"), "requester_id"
        ),
        # A follow, or a request waiting for approval, that lets the account's plain reposts in.
        Follow.objects.filter(follower_id=viewer_id, followee_id__in=wanted, show_reblogs=True).values_list(
            Value("showing_reblogs"), "followee_id"
        ),
        FollowRequest.objects.filter(
            requester_id=viewer_id, target_id__in=wanted, show_reblogs=True
        ).values_list(Value("showing_reblogs"), "target_id"),
        # A follow, or a request waiting for approval, that notifies the viewer of the account's posts.
        Follow.objects.filter(follower_id=viewer_id, followee_id__in=wanted, notify=True).values_list(
            Value("notifying"), "followee_id"
        ),
        FollowRequest.objects.filter(requester_id=viewer_id, target_id__in=wanted, notify=True).values_list(
            Value("notifying"), "target_id"
        ),
    ]
    if known_only:
        queries.append(
            get_user_model().objects.filter(id__in=wanted, is_active=True).values_list(Value("known"), "id")
        )
    for mark, other_id in queries[0].union(*queries[1:], all=True):
        marks.add((str(mark), int(other_id)))
    return [
        relationship_json(other_id, marks)
        for other_id in wanted
        if not known_only or ("known", other_id) in marks
    ]


def relationship_json(other_id: int, marks: set[tuple[str, int]]) -> dict[str, Any]:
    following = ("following", other_id) in marks
    muting = ("muting", other_id) in marks
    return {
        "id": str(other_id),
        "following": following,
        "showing_reblogs": ("showing_reblogs", other_id) in marks,
        "notifying": ("notifying", other_id) in marks,
        "languages": None,
        "followed_by": ("followed_by", other_id) in marks,
        "blocking": ("blocking", other_id) in marks,
        "blocked_by": ("blocked_by", other_id) in marks,
        "muting": muting,
        "muting_notifications": ("muting_notifications", other_id) in marks,
        "requested": ("requested", other_id) in marks,
        "requested_by": ("requested_by", other_id) in marks,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }
