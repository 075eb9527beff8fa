"""Notifications in groups, as Mastodon's grouped notifications (API v2) show them.

Likes of one post on one UTC day form one group (`favourite-<post>-<day>`), and so do plain reposts of one
post (`reblog-<post>-<day>`); every other notification is a group of its own (`ungrouped-<id>`). A group's
key is computed from the notification, never stored, so it is the same in every list that shows it.

A page holds up to `limit` groups: notifications are read newest first (oldest first after `min_id`) and
the page ends just before the first one that would start a group too many. Every notification between
the page's newest and oldest is in the page, so paging by those ids neither skips nor repeats one; a
group whose notifications go on past the page's end shows again on the next page, with the same key,
as Mastodon's do.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from weituan.core.errors import NotFound
from weituan.core.ids import MAX_ID
from weituan.microblog.models import Notification, NotificationKind
from weituan.microblog.queries.notifications import mastodon_type, notifications_shown

GROUPABLE_TYPES = frozenset({"favourite", "reblog"})
# Mastodon's sample_account_ids: the accounts most recently in the group, at most this many.
SAMPLE_ACCOUNTS = 8
DAY_SECONDS = 86400
LAST_DAY = 2_000_000  # a day number past any notification's (the year 7445), so a key names a real date
_READ_BATCH = 100


@dataclass(slots=True)
class NotificationGroup:
    """One group: `rows` are its notifications in the page (newest first); `count`, `most_recent_id` and
    `sample_actor_ids` describe the whole group, pages before and after included."""

    key: str
    type: str
    rows: list[Notification]
    count: int = 0
    most_recent_id: int = 0
    sample_actor_ids: list[int] = field(default_factory=list)

    @property
    def latest(self) -> Notification:
        return self.rows[0]


def _day(moment: datetime) -> int:
    return int(moment.timestamp()) // DAY_SECONDS


def _target_id(row: Notification, kind: str) -> int | None:
    """The post a groupable notification is about: the liked post, or the post a plain repost forwards."""
    if row.post is None:
        return None
    return row.post_id if kind == "favourite" else row.post.parent_id


def group_key(row: Notification, grouped_types: Iterable[str] = GROUPABLE_TYPES) -> str:
    """The key of the group `row` belongs to (its post and the post's parent loaded)."""
    kind = mastodon_type(row)
    if kind in GROUPABLE_TYPES and kind in set(grouped_types):
        target = _target_id(row, kind)
        if target is not None:
            return f"{kind}-{target}-{_day(row.created_at)}"
    return f"ungrouped-{row.id}"


def _walk(rows: "QuerySet[Notification]", *, upward: bool, start: int | None) -> Iterator[Notification]:
    """`rows` one by one, newest first below `start` (or oldest first above it when `upward`), read a
    batch at a time."""
    cursor = start
    while True:
        batch = rows
        if cursor is not None:
            batch = batch.filter(id__gt=cursor) if upward else batch.filter(id__lt=cursor)
        found = list(batch.order_by("id" if upward else "-id")[:_READ_BATCH])
        yield from found
        if len(found) < _READ_BATCH:
            return
        cursor = found[-1].id


def notification_groups_page(
    user: Any,
    *,
    types: Iterable[str] = (),
    exclude_types: Iterable[str] = (),
    account_id: int | None = None,
    grouped_types: Iterable[str] = GROUPABLE_TYPES,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[NotificationGroup]:
    """Up to `limit` groups of the user's notifications, the group with the newest notification first,
    paged by notification id as `notifications_page` is (see the module docstring)."""
    grouped = frozenset(grouped_types) & GROUPABLE_TYPES
    shown = notifications_shown(user, types=types, exclude_types=exclude_types, account_id=account_id)
    rows = shown
    if max_id is not None:
        rows = rows.filter(id__lt=max_id)
    upward = min_id is not None
    if upward:
        walk = _walk(rows, upward=True, start=min_id)
    else:
        if since_id is not None:
            rows = rows.filter(id__gt=since_id)
        walk = _walk(rows, upward=False, start=None)
    groups: dict[str, NotificationGroup] = {}
    for row in walk:
        key = group_key(row, grouped)
        group = groups.get(key)
        if group is None:
            if len(groups) == limit:
                break
            group = groups[key] = NotificationGroup(key=key, type=mastodon_type(row), rows=[])
        group.rows.append(row)
    page = list(groups.values())
    for group in page:
        group.rows.sort(key=lambda row: row.id, reverse=True)
    page.sort(key=lambda group: group.latest.id, reverse=True)
    _describe(shown, page, grouped)
    return page


def _group_filter(group: NotificationGroup) -> Q:
    """The notifications of a grouped group (`favourite-<post>-<day>` or `reblog-<post>-<day>`)."""
    kind, target, day = group.key.split("-")
    start = datetime.fromtimestamp(int(day) * DAY_SECONDS, tz=UTC)
    when = Q(created_at__gte=start, created_at__lt=start + timedelta(days=1))
    if kind == "favourite":
        return when & Q(kind=NotificationKind.LIKE, post_id=int(target))
    return when & Q(kind=NotificationKind.REPOST, post__parent_id=int(target), post__comment="")


def _describe(
    shown: "QuerySet[Notification]", groups: list[NotificationGroup], grouped: frozenset[str]
) -> None:
    """Fill in each group's count, newest id and sample accounts over the whole group: one query for
    all the grouped groups of the page, none for the others."""
    wanted = [group for group in groups if not group.key.startswith("ungrouped-")]
    for group in groups:
        if group.key.startswith("ungrouped-"):
            group.count, group.most_recent_id = 1, group.latest.id
            group.sample_actor_ids = [group.latest.actor_id]
    if not wanted:
        return
    combined = Q(pk__in=[])
    for group in wanted:
        combined |= _group_filter(group)
    members: dict[str, list[Notification]] = {group.key: [] for group in wanted}
    for row in shown.filter(combined).order_by("-id"):
        key = group_key(row, grouped)
        if key in members:
            members[key].append(row)
    for group in wanted:
        rows = members[group.key] or group.rows
        group.count = len(rows)
        group.most_recent_id = rows[0].id
        group.sample_actor_ids = list(dict.fromkeys(row.actor_id for row in rows))[:SAMPLE_ACCOUNTS]


def notification_group_get(user: Any, key: str) -> NotificationGroup:
    """The user's group under `key`, described whole; NotFound for a key that names none of theirs."""
    shown = notifications_shown(user)
    kind, _, rest = key.partition("-")
    parts = rest.split("-")
    if kind == "ungrouped" and len(parts) == 1 and parts[0].isdecimal() and int(parts[0]) <= MAX_ID:
        row = shown.filter(id=int(parts[0])).first()
        if row is None or group_key(row) != key:
            raise NotFound("Record not found")
        group = NotificationGroup(key=key, type=mastodon_type(row), rows=[row])
    elif (
        kind in GROUPABLE_TYPES
        and len(parts) == 2
        and all(part.isdecimal() for part in parts)
        and int(parts[0]) <= MAX_ID
        and int(parts[1]) <= LAST_DAY
    ):
        probe = NotificationGroup(key=key, type=kind, rows=[])
        rows = [row for row in shown.filter(_group_filter(probe)).order_by("-id") if group_key(row) == key]
        if not rows:
            raise NotFound("Record not found")
        group = NotificationGroup(key=key, type=kind, rows=rows)
    else:
        raise NotFound("Record not found")
    _describe(shown, [group], GROUPABLE_TYPES)
    return group


def notification_groups_unread_count(
    user: Any,
    *,
    types: Iterable[str] = (),
    exclude_types: Iterable[str] = (),
    account_id: int | None = None,
    grouped_types: Iterable[str] = GROUPABLE_TYPES,
    limit: int = 100,
) -> int:
    """How many groups hold unread notifications, counted up to `limit` (Mastodon caps it)."""
    grouped = frozenset(grouped_types) & GROUPABLE_TYPES
    shown = notifications_shown(user, types=types, exclude_types=exclude_types, account_id=account_id)
    unread = shown.filter(read_at__isnull=True).order_by("-id")
    keys: set[str] = set()
    for row in unread.iterator(chunk_size=_READ_BATCH):
        keys.add(group_key(row, grouped))
        if len(keys) >= limit:
            break
    return len(keys)
