"""Notification reads: a user's notifications, newest first and filterable by Mastodon type, unread counts,
and the read markers (of the notifications and of the home timeline).

Weituan's kinds map onto Mastodon's notification types: a mention or a comment is a `mention` (Mastodon
shows replies as mentions), a repost is a `reblog` when it has no comment of its own and a `quote` when
it has, a like is a `favourite`, a follow a `follow`, a request to follow a locked account a
`follow_request`, a new post of someone followed with `notify` a `status`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from weituan.core.errors import NotFound
from weituan.microblog.models import HomeReadMarker, Notification, NotificationKind
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.relations import notification_hidden_actor_ids

MASTODON_TYPE_FILTERS: dict[str, Q] = {
    "mention": Q(kind__in=[NotificationKind.MENTION, NotificationKind.COMMENT]),
    "reblog": Q(kind=NotificationKind.REPOST, post__comment=""),
    "quote": Q(kind=NotificationKind.REPOST) & ~Q(post__comment=""),
    "favourite": Q(kind=NotificationKind.LIKE),
    "follow": Q(kind=NotificationKind.FOLLOW),
    "follow_request": Q(kind=NotificationKind.FOLLOW_REQUEST),
    "status": Q(kind=NotificationKind.STATUS),
    "update": Q(kind=NotificationKind.UPDATE),
}


def mastodon_type(notification: Notification) -> str:
    """The Mastodon type of a notification (its post must be loaded for reposts)."""
    kind = notification.kind
    if kind in (NotificationKind.MENTION, NotificationKind.COMMENT):
        return "mention"
    if kind == NotificationKind.REPOST:
        post = notification.post
        return "quote" if post is not None and post.comment else "reblog"
    if kind == NotificationKind.LIKE:
        return "favourite"
    if kind == NotificationKind.FOLLOW_REQUEST:
        return "follow_request"
    if kind == NotificationKind.STATUS:
        return "status"
    if kind == NotificationKind.UPDATE:
        return "update"
    return "follow"


def _type_filter(types: Iterable[str]) -> Q:
    combined = Q(pk__in=[])
    for name in types:
        combined |= MASTODON_TYPE_FILTERS.get(name, Q(pk__in=[]))
    return combined


def notifications_page(
    user: Any,
    *,
    types: Iterable[str] = (),
    exclude_types: Iterable[str] = (),
    account_id: int | None = None,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[Notification]:
    """The user's notifications, newest first, paged by id; none from accounts blocked either way, nor
    from those the user muted hiding their notifications (`notification_hidden_actor_ids`)."""
    rows = notifications_shown(user, types=types, exclude_types=exclude_types, account_id=account_id)
    return id_page(rows, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def notifications_shown(
    user: Any,
    *,
    types: Iterable[str] = (),
    exclude_types: Iterable[str] = (),
    account_id: int | None = None,
) -> "QuerySet[Notification]":
    """The user's notifications of the types asked, as every list of them shows them (see
    `notifications_page`), unordered and unpaged."""
    # The post's parent tells a reply to the recipient's comment from a comment on their own post.
    rows = Notification.objects.filter(recipient=user).select_related("actor", "post", "post__parent")
    types = list(types)
    if types:
        rows = rows.filter(_type_filter(types))
    excluded = list(exclude_types)
    if excluded:
        rows = rows.exclude(_type_filter(excluded))
    if account_id is not None:
        rows = rows.filter(actor_id=account_id)
    hidden = notification_hidden_actor_ids(user.pk)
    if hidden:
        rows = rows.exclude(actor_id__in=hidden)
    return rows


def notification_get(user: Any, notification_id: int) -> Notification:
    """One of the user's notifications; anyone else's is NotFound."""
    row = (
        Notification.objects.select_related("actor", "post")
        .filter(id=notification_id, recipient=user)
        .first()
    )
    if row is None:
        raise NotFound("Record not found")
    return row


def notifications_unread_count(
    user: Any,
    *,
    types: Iterable[str] = (),
    exclude_types: Iterable[str] = (),
    account_id: int | None = None,
    limit: int = 1000,
) -> int:
    """How many notifications (of the types asked) the user has not read, counted up to `limit`, as
    Mastodon caps it."""
    if not types and not exclude_types and account_id is None:
        rows = Notification.objects.filter(recipient=user)  # no join to the posts for the plain count
        hidden = notification_hidden_actor_ids(user.pk)
        if hidden:
            rows = rows.exclude(actor_id__in=hidden)
    else:
        rows = notifications_shown(user, types=types, exclude_types=exclude_types, account_id=account_id)
    return rows.filter(read_at__isnull=True)[:limit].count()


@dataclass(frozen=True, slots=True)
class ReadMarker:
    """Mastodon's notifications marker, derived from what is marked read (nothing extra is stored)."""

    last_read_id: int
    version: int
    updated_at: datetime


def notifications_read_marker(user: Any) -> ReadMarker:
    """The newest read notification's id, how many are read, and when reading last happened."""
    summary = Notification.objects.filter(recipient=user, read_at__isnull=False).aggregate(
        last=Max("id"), count=Count("id"), when=Max("read_at")
    )
    return ReadMarker(
        last_read_id=summary["last"] or 0,
        version=summary["count"] or 0,
        updated_at=summary["when"] or timezone.now(),
    )


def home_read_marker(user: Any) -> ReadMarker | None:
    """Where the user stopped reading their home timeline, None until a client has said."""
    row = HomeReadMarker.objects.filter(user=user).first()
    if row is None:
        return None
    return ReadMarker(last_read_id=row.last_read_id, version=row.version, updated_at=row.updated_at)
