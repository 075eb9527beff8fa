"""Mastodon-style id paging (`max_id`, `since_id`, `min_id`) shared by every list the micro-blog serves."""

from typing import Any

from django.db.models import QuerySet


def id_page(
    rows: "QuerySet[Any]",
    *,
    max_id: int | None,
    since_id: int | None,
    min_id: int | None,
    limit: int,
    field: str = "id",
) -> list[Any]:
    """One page of `rows` by the time-sortable `field`, newest first.

    `max_id` bounds from above and `since_id` from below, giving the newest rows in between;
    `min_id` gives the rows just above it instead (the oldest first when read from the database, then
    turned around), which is how a client catches up on a gap without skipping anything.
    """
    if max_id is not None:
        rows = rows.filter(**{f"{field}__lt": max_id})
    lower = min_id if min_id is not None else since_id
    if lower is not None:
        rows = rows.filter(**{f"{field}__gt": lower})
    ascending = min_id is not None
    found = list(rows.order_by(field if ascending else f"-{field}")[:limit])
    if ascending:
        found.reverse()
    return found
