"""Relation writes: follow and unfollow, block and unblock, mute and unmute.

Every write locks the two accounts' counter rows in user-id order before it looks at the relation, so
a follow racing a block (or two people following each other at once) is serialised without deadlock,
and the followers/following counters move exactly once per follow row created or deleted.
Timeline changes (backfill after a follow, hiding after a block or mute) run after commit.

A locked account approves its followers: following it makes a `FollowRequest` instead of a follow,
and only the owner's authorization turns the request into a follow.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from weituan.accounts.queries import user_is_locked, users_by_ids
from weituan.accounts.services import user_profile_update
from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.microblog.models import (
    AccountStats,
    Block,
    Follow,
    FollowListMember,
    FollowRequest,
    Mute,
    NotificationKind,
)
from weituan.microblog.queries.relations import is_blocked_between, is_following, pending_requester_ids
from weituan.microblog.services.events import follow_event_record
from weituan.microblog.services.notifications import notification_create
from weituan.microblog.stats import account_stats_bump
from weituan.microblog.timelines import facade as timelines


def _require_account(user_id: int) -> None:
    if user_id not in users_by_ids([user_id]):
        raise NotFound("Record not found", code="not_found")


def _lock_pair(first_id: int, second_id: int) -> None:
    """Lock both accounts' counter rows, lowest id first. Call inside a transaction."""
    accounts_lock([first_id, second_id])


def accounts_lock(user_ids: Iterable[int]) -> None:
    """Lock the accounts' counter rows, lowest id first: the lock every relation write between two of
    them takes (see the module's docstring). Call inside a transaction."""
    ids = sorted(set(user_ids))
    AccountStats.objects.bulk_create(
        [AccountStats(user_id=user_id) for user_id in ids], ignore_conflicts=True
    )
    list(
        AccountStats.objects.select_for_update()
        .filter(user_id__in=ids)
        .order_by("user_id")
        .values_list("user_id")
    )


def _unfollow_locked(follower_id: int, followee_id: int) -> bool:
    """Delete the follow row and fix both counters; call holding `_lock_pair`."""
    deleted, _ = Follow.objects.filter(follower_id=follower_id, followee_id=followee_id).delete()
    if not deleted:
        return False
    # A list holds only accounts its owner follows (see `FollowList`).
    FollowListMember.objects.filter(follow_list__owner_id=follower_id, account_id=followee_id).delete()
    account_stats_bump(user_id=follower_id, following=-1)
    account_stats_bump(user_id=followee_id, followers=-1)
    return True


def _follow_locked(
    follower_id: int,
    followee_id: int,
    visitor_id: str = "",
    *,
    show_reblogs: bool = True,
    notify: bool = False,
) -> bool:
    """Make the follow row, fix both counters, notify, backfill and record the `follow` event (after the
    commit); call holding `_lock_pair`."""
    try:
        with transaction.atomic():
            Follow.objects.create(
                follower_id=follower_id, followee_id=followee_id, show_reblogs=show_reblogs, notify=notify
            )
    except IntegrityError:
        return False
    account_stats_bump(user_id=follower_id, following=1)
    account_stats_bump(user_id=followee_id, followers=1)
    notification_create(recipient_id=followee_id, actor_id=follower_id, kind=NotificationKind.FOLLOW)
    timelines.follow_added(follower_id=follower_id, followee_id=followee_id)
    follow_event_record(follower_id=follower_id, followee_id=followee_id, visitor_id=visitor_id)
    return True


def _reblogs_show_locked(follower_id: int, followee_id: int, show: bool) -> None:
    """Turn the followee's plain reposts on or off in the follower's home timeline, for a follow that
    exists; call holding `_lock_pair`. The stored timeline follows the change after the commit: reposts
    already delivered leave it, or the followee's recent reposts come back."""
    follows = Follow.objects.filter(follower_id=follower_id, followee_id=followee_id)
    if not follows.exclude(show_reblogs=show).update(show_reblogs=show):
        return
    if show:
        timelines.follow_added(follower_id=follower_id, followee_id=followee_id)
    else:
        timelines.reblogs_hidden(user_id=follower_id, author_id=followee_id)


def follow_create(
    *,
    follower: Any,
    followee_id: int,
    visitor_id: str = "",
    reblogs: bool | None = None,
    notify: bool | None = None,
) -> bool:
    """`follower` follows `followee_id`; True when a new follow (or follow request) was made, False when
    it already existed.

    `reblogs` False keeps the followee's plain reposts out of the follower's home timeline (Mastodon's
    `reblogs=false`; quotes still come in), True lets them in; None leaves an existing follow or request
    as it is, and lets them in on a new one. `notify` True has the follower notified (`status`) of each
    new post of the followee, False stops it, None leaves it as it is (off on a new follow). Asking again
    with other values changes the existing follow or request, as Mastodon does.

    Refused for oneself (`cannot_follow_self`), an unknown account (`not_found`) and a block either way
    (`blocked`); a refusal changes nothing. The followee is notified, and their recent posts enter the
    follower's home timeline. A locked followee gets a follow request instead (and a `follow_request`
    notification); nothing of theirs reaches the follower until they authorize it. A new follow records
    a `follow` event after the commit (with `visitor_id`, the browser's, when there is one); a request
    records it when it is authorized.
    """
    if follower.pk == followee_id:
        raise ValidationFailed("You cannot follow yourself", code="cannot_follow_self")
    _require_account(followee_id)
    with transaction.atomic():
        _lock_pair(follower.pk, followee_id)
        if is_blocked_between(follower.pk, followee_id):
            raise PermissionDenied("You cannot follow this account", code="blocked")
        if is_following(follower.pk, followee_id):
            if reblogs is not None:
                _reblogs_show_locked(follower.pk, followee_id, reblogs)
            if notify is not None:
                Follow.objects.filter(follower_id=follower.pk, followee_id=followee_id).exclude(
                    notify=notify
                ).update(notify=notify)
            return False
        show_reblogs = reblogs is not False
        # Read under the lock: unlocking takes the same lock before it accepts what is pending, so a
        # request made here is either seen by it or was never made.
        if not user_is_locked(followee_id):
            return _follow_locked(
                follower.pk, followee_id, visitor_id, show_reblogs=show_reblogs, notify=bool(notify)
            )
        try:
            with transaction.atomic():
                FollowRequest.objects.create(
                    requester_id=follower.pk,
                    target_id=followee_id,
                    show_reblogs=show_reblogs,
                    notify=bool(notify),
                )
        except IntegrityError:
            changes = {"show_reblogs": reblogs, "notify": notify}
            changed = {name: value for name, value in changes.items() if value is not None}
            if changed:
                FollowRequest.objects.filter(requester_id=follower.pk, target_id=followee_id).update(
                    **changed
                )
            return False
        notification_create(
            recipient_id=followee_id, actor_id=follower.pk, kind=NotificationKind.FOLLOW_REQUEST
        )
    return True


def follow_delete(*, follower: Any, followee_id: int) -> bool:
    """`follower` stops following `followee_id` (or withdraws a pending request); True when a follow was
    removed. Their posts leave the follower's home timeline, and the account leaves the follower's lists."""
    _require_account(followee_id)
    with transaction.atomic():
        _lock_pair(follower.pk, followee_id)
        FollowRequest.objects.filter(requester_id=follower.pk, target_id=followee_id).delete()
        removed = _unfollow_locked(follower.pk, followee_id)
        if removed:
            timelines.authors_hidden(user_id=follower.pk, author_ids=[followee_id], with_reposts=False)
    return removed


def _no_such_request() -> NotFound:
    return NotFound("No follow request from this account", code="follow_request_not_found")


def _request_take_locked(requester_id: int, target_id: int) -> tuple[bool, bool] | None:
    """Delete the pending request; the flags it carries to the follow (`show_reblogs`, `notify`), or
    None when there was none. Call holding `_lock_pair`."""
    requests = FollowRequest.objects.filter(requester_id=requester_id, target_id=target_id)
    flags = requests.values_list("show_reblogs", "notify").first()
    if flags is None or not requests.delete()[0]:
        return None
    return bool(flags[0]), bool(flags[1])


def follow_request_authorize(*, owner: Any, requester_id: int) -> bool:
    """`owner` accepts the pending request of `requester_id`: it becomes a follow, with the counters,
    the follow notification and the timeline backfill of any follow. `follow_request_not_found` when
    there is no such request (a second authorize changes nothing)."""
    with transaction.atomic():
        _lock_pair(owner.pk, requester_id)
        flags = _request_take_locked(requester_id, owner.pk)
        if flags is None:
            raise _no_such_request()
        _follow_locked(requester_id, owner.pk, show_reblogs=flags[0], notify=flags[1])
    return True


def follow_request_reject(*, owner: Any, requester_id: int) -> bool:
    """`owner` turns down the pending request of `requester_id`; `follow_request_not_found` when none."""
    with transaction.atomic():
        _lock_pair(owner.pk, requester_id)
        deleted, _ = FollowRequest.objects.filter(requester_id=requester_id, target_id=owner.pk).delete()
        if not deleted:
            raise _no_such_request()
    return True


def follow_requests_authorize_all(*, owner: Any) -> int:
    """Accept every request waiting for `owner` (what unlocking an account does, as in Mastodon).

    Returns how many became follows. Each is accepted under its own pair lock, oldest first.
    Call after the account was unlocked: the list is read under the owner's lock, so a follow that
    saw the account still locked has committed its request by then, and any later one follows at once.
    """
    with transaction.atomic():
        _lock_pair(owner.pk, owner.pk)
        pending = pending_requester_ids(owner.pk)
    accepted = 0
    for requester_id in pending:
        with transaction.atomic():
            _lock_pair(owner.pk, requester_id)
            flags = _request_take_locked(requester_id, owner.pk)
            if flags is not None and _follow_locked(
                requester_id, owner.pk, show_reblogs=flags[0], notify=flags[1]
            ):
                accepted += 1
    return accepted


def account_lock_set(*, owner: Any, locked: bool) -> int:
    """Lock or unlock `owner`'s account; unlocking accepts every pending request (returns how many)."""
    was_locked = bool(owner.locked)
    user_profile_update(user=owner, locked=locked)
    return account_lock_change(owner=owner, was_locked=was_locked)


def account_lock_change(*, owner: Any, was_locked: bool) -> int:
    """Call after `owner`'s `locked` flag was written: unlocking accepts whatever was pending.

    Returns how many requests were accepted (0 when the account is still locked or was not before).
    """
    if not was_locked or user_is_locked(owner.pk):
        return 0
    return follow_requests_authorize_all(owner=owner)


def block_create(*, blocker: Any, blocked_id: int) -> bool:
    """`blocker` blocks `blocked_id`; True when a new block was made.

    Follows in both directions are removed (counters fixed), each side leaves the other's lists, and each
    side's posts and reposts of them leave the other's home timeline.
    """
    if blocker.pk == blocked_id:
        raise ValidationFailed("You cannot block yourself", code="cannot_block_self")
    _require_account(blocked_id)
    with transaction.atomic():
        _lock_pair(blocker.pk, blocked_id)
        try:
            with transaction.atomic():
                Block.objects.create(blocker_id=blocker.pk, blocked_id=blocked_id)
        except IntegrityError:
            return False
        _unfollow_locked(blocker.pk, blocked_id)
        _unfollow_locked(blocked_id, blocker.pk)
        FollowRequest.objects.filter(
            Q(requester_id=blocker.pk, target_id=blocked_id)
            | Q(requester_id=blocked_id, target_id=blocker.pk)
        ).delete()
        timelines.authors_hidden(user_id=blocker.pk, author_ids=[blocked_id])
        timelines.authors_hidden(user_id=blocked_id, author_ids=[blocker.pk])
    return True


def block_delete(*, blocker: Any, blocked_id: int) -> bool:
    """`blocker` lifts a block; True when there was one. Follows removed by the block stay removed."""
    _require_account(blocked_id)
    deleted, _ = Block.objects.filter(blocker_id=blocker.pk, blocked_id=blocked_id).delete()
    return bool(deleted)


# The longest mute that can be given an end; asking for more is refused rather than overflowing a date.
MUTE_DURATION_MAX = 100 * 365 * 24 * 3600


def mute_expiry(duration: int) -> datetime | None:
    """When a mute of `duration` seconds made now ends; None for 0, a mute without an end (Mastodon's
    meaning). A negative or too long duration is refused (422 `invalid_duration`)."""
    if duration < 0 or duration > MUTE_DURATION_MAX:
        raise ValidationFailed(
            f"duration must be a number of seconds from 0 (no end) to {MUTE_DURATION_MAX}",
            code="invalid_duration",
            field="duration",
        )
    return timezone.now() + timedelta(seconds=duration) if duration else None


def mute_create(*, muter: Any, muted_id: int, notifications: bool = True, duration: int = 0) -> bool:
    """`muter` mutes `muted_id`: their posts, and reposts of them, stop appearing for the muter only;
    with `notifications`, their notifications too. A `duration` (seconds, 0 for none) ends the mute by
    itself. Muting again sets both anew, as Mastodon does. True when the account was not muted before.

    A mute without an end takes the account's posts out of the muter's stored home timeline and fan-out
    stops delivering them. A mute with an end leaves the stored timeline alone (its reads drop the
    account while the mute lasts), so the posts are all there again the moment it ends, with no work
    done then. Changing one kind into the other takes the posts out, or puts them back.
    """
    if muter.pk == muted_id:
        raise ValidationFailed("You cannot mute yourself", code="cannot_mute_self")
    expires_at = mute_expiry(duration)
    _require_account(muted_id)
    with transaction.atomic():
        _lock_pair(muter.pk, muted_id)
        before = Mute.objects.filter(muter_id=muter.pk, muted_id=muted_id).first()
        if before is None:
            Mute.objects.create(
                muter_id=muter.pk, muted_id=muted_id, hide_notifications=notifications, expires_at=expires_at
            )
        else:
            Mute.objects.filter(id=before.pk).update(hide_notifications=notifications, expires_at=expires_at)
        posts_removed_before = before is not None and before.expires_at is None
        if expires_at is None and not posts_removed_before:
            timelines.authors_hidden(user_id=muter.pk, author_ids=[muted_id])
        elif expires_at is not None and posts_removed_before and is_following(muter.pk, muted_id):
            timelines.follow_added(follower_id=muter.pk, followee_id=muted_id)
    return before is None or (before.expires_at is not None and before.expires_at <= timezone.now())


def mute_delete(*, muter: Any, muted_id: int) -> bool:
    """`muter` unmutes `muted_id`; if still following, their recent posts come back into the timeline."""
    _require_account(muted_id)
    with transaction.atomic():
        deleted, _ = Mute.objects.filter(muter_id=muter.pk, muted_id=muted_id).delete()
        if deleted and is_following(muter.pk, muted_id):
            timelines.follow_added(follower_id=muter.pk, followee_id=muted_id)
    return bool(deleted)


def mutes_expired_delete(*, most: int = 10_000) -> int:
    """Delete the mutes whose end has passed, at most `most` of them; returns how many went.

    Housekeeping only: every read already ignores a mute past its end (`MuteQuerySet.in_force`), and a
    mute with an end never took posts out of a timeline, so nothing needs putting back.
    """
    ended = list(
        Mute.objects.filter(expires_at__lte=timezone.now())
        .order_by("expires_at")
        .values_list("id", flat=True)[:most]
    )
    if not ended:
        return 0
    deleted, _ = Mute.objects.filter(id__in=ended, expires_at__lte=timezone.now()).delete()
    return deleted
