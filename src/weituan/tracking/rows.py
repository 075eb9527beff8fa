"""The shape of an event row on its way to the analytics store, and the names of the events we emit."""

import itertools
import operator
import os
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from weituan.tracking.channels import Channel

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "event", "ts", "visitor_id", "user_id", "url", "referrer", "referrer_domain", "channel",
    "source", "medium", "campaign", "hop_depth", "sharer_id", "link_id", "post_id", "deal_id", "order_id",
    "revenue", "currency", "props", "origin", "api_key_id", "device", "user_agent", "ip", "is_bot",
    "bot_reason",
)  # fmt: skip
_DEFAULTS: dict[str, Any] = {
    "user_id": 0, "url": "", "referrer": "", "referrer_domain": "", "channel": "", "source": "",
    "medium": "", "campaign": "", "hop_depth": 0, "sharer_id": 0, "link_id": 0, "post_id": 0,
    "deal_id": 0, "order_id": "", "revenue": 0, "currency": "", "props": "{}", "origin": "",
    "api_key_id": 0, "device": "", "user_agent": "", "ip": "", "is_bot": 0, "bot_reason": "",
}  # fmt: skip


class EventName:
    """Events the services emit (browsers and shops may send any name)."""

    LINK_CLICK = "link_click"
    PAGEVIEW = "pageview"
    POST_IMPRESSION = "post_impression"
    DEAL_VIEW = "deal_view"
    LIKE = "like"
    COMMENT = "comment"
    REPOST = "repost"
    FOLLOW = "follow"
    TEAM_START = "team_start"
    TEAM_JOIN = "team_join"
    ORDER_PLACED = "order_placed"
    ORDER_PAID = "order_paid"
    ORDER_REFUNDED = "order_refunded"
    ORDER_FAILED = "order_failed"  # its payment did not go through: the provider refused the capture
    VOUCHER_REDEEMED = "voucher_redeemed"
    PUSH_DELIVERED = "push_delivered"
    SHARE = "share"


_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)
_id_text = (_ID_PREFIX + "%016x").__mod__
# The same ids as `new_event_id`, from the same counter, with no Python frame per id (the /s/ fast
# path calls it once per click). Look it up on the module at each call: a forked child gets its own.
event_id_next = map(_id_text, _id_counter).__next__
# The same ids again, as ASCII bytes, for a click line built as bytes (the /s/ fast path).
event_id_bytes_next = map((_ID_PREFIX + "%016x").encode().__mod__, _id_counter).__next__


def _reseed_after_fork() -> None:
    global _ID_PREFIX, _id_counter, _id_text, event_id_next, event_id_bytes_next
    _ID_PREFIX = os.urandom(8).hex()
    _id_counter = itertools.count(1)
    _id_text = (_ID_PREFIX + "%016x").__mod__
    event_id_next = map(_id_text, _id_counter).__next__
    event_id_bytes_next = map((_ID_PREFIX + "%016x").encode().__mod__, _id_counter).__next__


os.register_at_fork(after_in_child=_reseed_after_fork)

# The same ids as bytes, made a block at a time for the /s/ fast path: it takes one per click with
# `event_ids_bytes.popleft()` (atomic: threads never get the same id; the deque is never replaced)
# and calls `event_ids_bytes_refill` when the block is used up. A forked child drops its parent's block.
_EVENT_IDS_PER_BLOCK = 256
event_ids_bytes: deque[bytes] = deque()
os.register_at_fork(after_in_child=event_ids_bytes.clear)


def event_ids_bytes_refill() -> bytes:
    """Make the next block of `event_ids_bytes`; returns one more id."""
    make = event_id_bytes_next
    event_ids_bytes.extend([make() for _ in range(_EVENT_IDS_PER_BLOCK)])
    return make()


def new_event_id() -> str:
    """32 hex digits: a random per-process prefix and a counter (unique without a syscall per event)."""
    return _id_text(next(_id_counter))


ROW_TEMPLATE: dict[str, Any] = {"event_id": "", **_DEFAULTS}


def event_row(event: str, ts: datetime, visitor_id: str, **fields: Any) -> dict[str, Any]:
    """A complete row: the given fields over the defaults, with an event id when none was given."""
    row = {**ROW_TEMPLATE, **fields, "event": event, "ts": ts, "visitor_id": visitor_id}
    if not row["event_id"]:
        row["event_id"] = _id_text(next(_id_counter))
    return row


def row_with_channel(row: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """Copy the classification of a landing into the row."""
    row["channel"] = channel.name
    row["source"] = channel.source
    row["medium"] = channel.medium
    row["campaign"] = channel.campaign
    row["referrer_domain"] = channel.referrer_domain
    row["hop_depth"] = channel.hop_depth
    if channel.sharer_id:
        row["sharer_id"] = channel.sharer_id
    if channel.link_id:
        row["link_id"] = channel.link_id
    if channel.post_id and not row.get("post_id"):
        row["post_id"] = channel.post_id
    return row


event_values = operator.itemgetter(*EVENT_COLUMNS)  # row dict -> tuple in EVENT_COLUMNS order
_ALWAYS = frozenset({"event_id", "event", "ts", "visitor_id"})


def event_columns(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The rows turned into columns, keeping only the columns where some row differs from the default.

    Leaving the rest out of the insert lets the store fill them: a batch of impressions sends 6
    columns instead of 28. Transposing once and counting defaults with `tuple.count` keeps the
    per-value work in C.
    """
    count = len(rows)
    names: list[str] = []
    kept: list[tuple[Any, ...]] = []
    for name, values in zip(EVENT_COLUMNS, zip(*map(event_values, rows), strict=True), strict=True):
        if name in _ALWAYS or values.count(_DEFAULTS[name]) != count:
            names.append(name)
            kept.append(values)
    return tuple(names), kept
