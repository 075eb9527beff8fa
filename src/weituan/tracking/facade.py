"""What other apps may use of tracking. Plain dataclasses in and out; never import tracking's models.

from weituan.tracking import facade as tracking
link = tracking.short_link_for_share(sharer_id=..., post_id=..., target_url=..., channel="microblog",
                                     hop_depth=1)
tracking.event_emit(event=tracking.EventName.ORDER_PLACED, user_id=..., order_id=..., revenue=...)
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from weituan.tracking import queries
from weituan.tracking.buffer import write_buffer
from weituan.tracking.channels import Channel, LinkFacts, channel_of_visit
from weituan.tracking.impressions import impressions_record
from weituan.tracking.models import ShortLink
from weituan.tracking.queries import FirstTouch, VisitSession
from weituan.tracking.rows import EventName, event_row
from weituan.tracking.services import links as link_services
from weituan.tracking.services import outbound_links
from weituan.tracking.services.outbox import outbox_event_write, outbox_events_write, outbox_move
from weituan.tracking.visitors import VISITOR_COOKIE, visitor_id_valid

__all__ = [
    "Channel",
    "EventName",
    "FirstTouch",
    "LinkFacts",
    "ShortLinkInfo",
    "VisitSession",
    "channel_of_visit",
    "event_emit",
    "event_record",
    "events_flush",
    "first_touch_of",
    "impressions_record",
    "outbound_links_create",
    "outbound_links_of",
    "outbound_links_statement",
    "outbound_targets",
    "sessions_between",
    "short_link_for_outbound",
    "short_link_for_share",
    "store_query",
    "visitor_id_of",
]

first_touch_of = queries.first_touch_of
sessions_between = queries.sessions_between


@dataclass(frozen=True)
class ShortLinkInfo:
    id: int
    code: str
    url: str  # the short URL to show or send, e.g. https://weituan.example/s/Ab3xYz9Q
    target_url: str
    channel: str
    hop_depth: int
    sharer_id: int | None
    post_id: int | None
    deal_id: int | None


def _info(row: ShortLink) -> ShortLinkInfo:
    return ShortLinkInfo(
        id=row.pk,
        code=row.code,
        url=f"{settings.SITE_URL}/s/{row.code}",
        target_url=row.target_url,
        channel=row.channel,
        hop_depth=row.hop_depth,
        sharer_id=row.sharer_id,
        post_id=row.post_id,
        deal_id=row.deal_id,
    )


def short_link_for_share(
    *,
    sharer_id: int,
    post_id: int | None,
    target_url: str,
    channel: str = "microblog",
    hop_depth: int = 0,
    deal_id: int | None = None,
    campaign: str = "",
) -> ShortLinkInfo:
    """The sharer's own link to a post (original: hop 0; a repost hop: its depth), or a push/email link.

    A share of a page that is no post (a user's invite link, a team of a deal not announced in a
    post) has `post_id=None` and a `campaign` naming what is shared.
    Idempotent per sharer, post, channel and campaign. Raises ValidationFailed for a non-http(s) target.
    """
    key = link_services.share_dedup_key(
        sharer_id=sharer_id, post_id=post_id, channel=channel, campaign=campaign
    )
    row = link_services.short_link_create(
        dedup_key=key,
        target_url=target_url,
        channel=channel,
        hop_depth=hop_depth,
        sharer_id=sharer_id,
        post_id=post_id,
        deal_id=deal_id,
        campaign=campaign,
    )
    return _info(row)


def short_link_for_outbound(*, post_id: int, url: str, sharer_id: int | None = None) -> ShortLinkInfo:
    """The link that stands for an outbound URL in a post, so clicks are counted by destination."""
    row = link_services.short_link_create(
        dedup_key=link_services.outbound_dedup_key(post_id=post_id, url=url),
        target_url=url,
        channel="outbound",
        sharer_id=sharer_id,
        post_id=post_id,
    )
    return _info(row)


# The links of every outbound URL in a post, made in bulk as the post is written (see `outbound_links`).
outbound_targets = outbound_links.outbound_targets
outbound_links_create = outbound_links.outbound_links_create
outbound_links_statement = outbound_links.outbound_links_statement
outbound_links_of = outbound_links.outbound_links_of


def event_emit(
    *,
    event: str,
    user_id: int | None,
    visitor_id: str = "",
    ts: datetime | None = None,
    event_id: str | None = None,
    order_id: str | int | None = None,
    revenue: int = 0,
    currency: str = "",
    deal_id: int | None = None,
    post_id: int | None = None,
    props: dict[str, Any] | None = None,
) -> str:
    """A business event (order placed/paid/refunded, team start/join, voucher redeemed...).

    Written to the outbox IN THE CALLER'S TRANSACTION: it is stored if and only if the change commits.
    Returns the event id.
    """
    payload = event_payload(
        order_id=order_id, revenue=revenue, currency=currency, deal_id=deal_id, post_id=post_id, props=props
    )
    return outbox_event_write(
        event=event, user_id=user_id, visitor_id=visitor_id, ts=ts, event_id=event_id, payload=payload
    )


def event_payload(
    *,
    order_id: str | int | None = None,
    revenue: int = 0,
    currency: str = "",
    deal_id: int | None = None,
    post_id: int | None = None,
    props: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What `event_emit` keeps of a business event besides its name and user: its props and facts."""
    payload: dict[str, Any] = dict(props or {})
    if order_id is not None:
        payload["order_id"] = str(order_id)
    if revenue:
        payload["revenue"] = int(revenue)
    if currency:
        payload["currency"] = currency.upper()
    if deal_id:
        payload["deal_id"] = int(deal_id)
    if post_id:
        payload["post_id"] = int(post_id)
    return payload


def events_emit(events: Sequence[tuple[str, int | None, dict[str, Any]]]) -> None:
    """Several business events, each (event, user id, payload as `event_payload` makes it), stamped now:
    written to the outbox in the caller's transaction, as `event_emit` writes one, in one statement."""
    outbox_events_write(events)


def event_record(
    *,
    event: str,
    user_id: int | None = None,
    visitor_id: str = "",
    ts: datetime | None = None,
    post_id: int | None = None,
    deal_id: int | None = None,
    url: str = "",
    props: dict[str, Any] | None = None,
) -> None:
    """A high-volume event (impression, view, like...) through the write buffer: cheap, batched."""
    row = event_row(
        event,
        ts or datetime.now(UTC),
        visitor_id or (f"u:{user_id}" if user_id else "anonymous"),
        user_id=user_id or 0,
        post_id=post_id or 0,
        deal_id=deal_id or 0,
        url=url,
        origin="server",
        props=json.dumps(props or {}, ensure_ascii=False, separators=(",", ":"), default=str),
    )
    write_buffer().add(row)


def events_flush() -> None:
    """Write everything buffered and every committed outbox event to the store now.

    Clicks that a process which died had spooled are stored too (see `spool`).
    """
    write_buffer().flush()
    outbox_move()


def visitor_id_of(request: HttpRequest) -> str:
    """The first-party visitor id of a browser request ("" before its first tracked visit, and for a
    cookie that is not one of ours)."""
    value = request.COOKIES.get(VISITOR_COOKIE, "")
    return value if visitor_id_valid(value) else ""


def store_query(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run a read in ClickHouse SQL on the analytics store; tables: events, first_touch, identities."""
    return queries.rows_of(sql, params)
