"""Notifications: telling a user that someone mentioned, commented on, reposted, liked, followed them or
asked to follow them, or that someone they follow with `notify` posted."""

from collections.abc import Sequence

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.stream_events import stream_publish
from weituan.microblog.models import Block, Follow, Mute, Notification, NotificationKind

# Kinds where doing the same thing twice (like, unlike, like) should not notify twice.
_ONCE_KINDS = {NotificationKind.LIKE, NotificationKind.FOLLOW, NotificationKind.FOLLOW_REQUEST}


def notification_blocked(*, recipient_id: int, actor_id: int) -> bool:
    """True when the recipient must not hear from the actor: a block either way, or a mute by the
    recipient that hides notifications (Mastodon's `notifications=true`) and has not ended."""
    if Block.objects.filter(
        Q(blocker_id=recipient_id, blocked_id=actor_id) | Q(blocker_id=actor_id, blocked_id=recipient_id)
    ).exists():
        return True
    return (
        Mute.objects.filter(muter_id=recipient_id, muted_id=actor_id, hide_notifications=True)
        .in_force()
        .exists()
    )


def notification_create(
    *, recipient_id: int, actor_id: int, kind: str, post_id: int | None = None
) -> Notification | None:
    """Notify `recipient_id` of `kind` done by `actor_id`; returns None when nothing is sent.

    Nobody is notified of their own actions, nor by someone they blocked or were blocked by, nor by
    someone they muted with notifications hidden.
    Likes, follows and follow requests are notified once per (actor, post): undoing and redoing them
    is not news.
    Call inside the transaction of the action, so a rolled-back action leaves no notification.
    """
    if kind not in NotificationKind.values:
        raise ValidationFailed(f"Unknown notification kind {kind!r}", code="invalid_kind")
    if recipient_id == actor_id:
        return None
    if notification_blocked(recipient_id=recipient_id, actor_id=actor_id):
        return None
    if (
        kind in _ONCE_KINDS
        and Notification.objects.filter(recipient_id=recipient_id, actor_id=actor_id, kind=kind)
        .filter(Q(post_id=post_id) if post_id is not None else Q(post__isnull=True))
        .exists()
    ):
        return None
    made = Notification.objects.create(
        recipient_id=recipient_id, actor_id=actor_id, kind=kind, post_id=post_id
    )
    stream_publish({"t": "notification", "id": made.id, "r": recipient_id})
    return made


def notifications_for_new_posts(*, posts: Sequence[tuple[int, int]]) -> int:
    """Notify (`status`) each follower who follows a post's author with `notify` of the new post; `posts`
    are (post id, author id). Returns how many notifications were asked for.

    One query reads those followers of all the authors (none across a block either way, nor one who
    muted the author hiding their notifications), one inserts the notifications. Call once per post, when its distribution starts,
    in the transaction that records that start, so the two commit (or fail) together. The insert skips
    a notification already there (`notification_status_once`), so a distribution run again for any
    reason tells nobody twice.
    """
    by_author: dict[int, list[int]] = {}
    for post_id, author_id in posts:
        by_author.setdefault(author_id, []).append(post_id)
    if not by_author:
        return 0
    follows = (
        Follow.objects.filter(followee_id__in=list(by_author), notify=True)
        .exclude(
            Exists(
                Block.objects.filter(
                    Q(blocker_id=OuterRef("follower_id"), blocked_id=OuterRef("followee_id"))
                    | Q(blocker_id=OuterRef("followee_id"), blocked_id=OuterRef("follower_id"))
                )
            )
        )
        .exclude(
            Exists(
                Mute.objects.filter(
                    muter_id=OuterRef("follower_id"),
                    muted_id=OuterRef("followee_id"),
                    hide_notifications=True,
                ).in_force()
            )
        )
        .values_list("followee_id", "follower_id")
    )
    told = [
        (follower_id, author_id, post_id)
        for author_id, follower_id in follows
        for post_id in by_author[author_id]
    ]
    made = Notification.objects.bulk_create(
        [
            Notification(
                recipient_id=follower_id, actor_id=author_id, kind=NotificationKind.STATUS, post_id=post_id
            )
            for follower_id, author_id, post_id in told
        ],
        ignore_conflicts=True,
    )
    # The ids of rows inserted while skipping conflicts are not known: the streams find each by its post.
    for follower_id, _, post_id in told:
        stream_publish({"t": "notification", "r": follower_id, "p": post_id})
    return len(made)


def notifications_mark_read(*, user_id: int, up_to_id: int | None = None) -> int:
    """Mark the user's unread notifications read (all of them, or those with id <= `up_to_id`)."""
    unread = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True)
    if up_to_id is not None:
        unread = unread.filter(id__lte=up_to_id)
    return unread.update(read_at=timezone.now())


def notification_dismiss(*, user_id: int, notification_id: int) -> None:
    """Delete one of the user's notifications; someone else's is as good as missing."""
    deleted, _ = Notification.objects.filter(id=notification_id, recipient_id=user_id).delete()
    if not deleted:
        raise NotFound("Notification not found")


def notifications_dismiss(*, user_id: int, notification_ids: Sequence[int]) -> int:
    """Delete those of `notification_ids` that are the user's (a group of them, as Mastodon dismisses
    a notification group); how many went."""
    deleted, _ = Notification.objects.filter(id__in=list(notification_ids), recipient_id=user_id).delete()
    return deleted


def notifications_clear(*, user_id: int) -> int:
    """Delete every notification of the user."""
    deleted, _ = Notification.objects.filter(recipient_id=user_id).delete()
    return deleted


def notifications_for_post_delete(*, post_id: int) -> int:
    """Remove the notifications about a deleted post, so nobody is pointed at something gone."""
    deleted, _ = Notification.objects.filter(post_id=post_id).delete()
    return deleted
