"""Turning incoming events (native API, browser beacon, link clicks) into validated, classified rows."""

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings

from weituan.tracking.buffer import write_buffer
from weituan.tracking.channels import (
    GOOGLE_CLICK_IDS,
    Channel,
    LinkFacts,
    channel_of_visit,
    host_of,
    utm_of,
)
from weituan.tracking.clients import bot_reason, device_class, ip_anonymous
from weituan.tracking.links_cache import ResolvedLink, link_resolve
from weituan.tracking.rows import ROW_TEMPLATE, EventName, event_row, new_event_id, row_with_channel
from weituan.tracking.services.ingest import click_first_in_process, events_store
from weituan.tracking.spool import CLICK_COLUMNS
from weituan.tracking.store.base import tsv_text
from weituan.tracking.visitors import outside_id

MAX_BATCH = 10_000
MAX_FUTURE = timedelta(hours=1)
MAX_PAST = timedelta(days=3650)
MAX_PROPS_BYTES = 32_768
MAX_TEXT = 2000
MAX_ID = 128


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str
    reason: str


@dataclass(frozen=True)
class ClientFacts:
    """What the request says about the browser behind an event (not the event body)."""

    user_agent: str = ""
    ip: str = ""
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    rejected: list[Rejection]


class EventInvalid(ValueError):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


@lru_cache(maxsize=1)
def site_hosts() -> frozenset[str]:
    hosts = {host_of(settings.SITE_URL)}
    hosts.update(h.lstrip(".") for h in settings.ALLOWED_HOSTS if h and h != "*")
    return frozenset(h[4:] if h.startswith("www.") else h for h in hosts if h)


def visit_channel(*, url: str, referrer: str, link: ResolvedLink | None = None) -> Channel:
    """The channel of a landing; our share token `wt_s` in the URL names the short link it came through."""
    if link is None and "wt_s=" in url:
        token = utm_of(url).get("wt_s", "")
        link = link_resolve(token) if token else None
    return channel_of_visit(
        url=url, referrer=referrer, link=link.facts if link else None, site_hosts=site_hosts()
    )


def parse_ts(value: Any, *, now: datetime) -> datetime:
    """ISO 8601 (naive means UTC) or epoch seconds/milliseconds; refused if far in the future or past."""
    if value is None or value == "":
        return now
    if isinstance(value, str):
        moment = _iso_moment(value)
    elif isinstance(value, bool):
        raise EventInvalid("bad_ts", "ts must be an ISO 8601 string or epoch seconds")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise EventInvalid("bad_ts", "ts must be a finite number")
        seconds = value / 1000 if value > 100_000_000_000 else value
        try:
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise EventInvalid("bad_ts", "ts is out of range") from None
    else:
        raise EventInvalid("bad_ts", "ts must be an ISO 8601 string or epoch seconds")
    if moment > now + MAX_FUTURE:
        raise EventInvalid("ts_in_future", "ts is more than an hour in the future")
    if moment < now - MAX_PAST:
        raise EventInvalid("ts_too_old", "ts is more than ten years in the past")
    return moment


@lru_cache(maxsize=4096)
def _iso_moment(value: str) -> datetime:
    # Events of one batch often share a timestamp; the answer does not depend on the time of asking.
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise EventInvalid("bad_ts", f"ts {value[:40]!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _text(raw: dict[str, Any], key: str, *, limit: int = MAX_TEXT) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EventInvalid(f"bad_{key}", f"{key} must be a string")
    if len(value) > limit:
        raise EventInvalid(f"bad_{key}", f"{key} is longer than {limit} characters")
    return value


_CONTROL = re.compile(r"[\t\n\r\0]")


def _ident(value: Any, key: str, *, required: bool) -> str:
    if value.__class__ is str and value and len(value) <= MAX_ID and not _CONTROL.search(value):
        return value  # the common case, checked first
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        if required:
            raise EventInvalid(f"missing_{key}", f"{key} is required")
        return ""
    if not isinstance(value, str) or len(value) > MAX_ID or _CONTROL.search(value):
        raise EventInvalid(f"bad_{key}", f"{key} must be a string of at most {MAX_ID} characters")
    return value


def event_parse(
    raw: Any, *, now: datetime, origin: str, api_key_id: int = 0, client: ClientFacts | None = None
) -> dict[str, Any]:
    """One native event `{event, ts, visitor_id, user_id?, url?, referrer?, event_id?, props?}` as a row.

    Ids sent with an API key are stored in that key's namespace (`visitors.outside_id`); an address in
    props (`$ip`, `ip`) is taken out and only its network kept, in the `ip` column.
    """
    if not isinstance(raw, dict):
        raise EventInvalid("not_an_object", "each event must be a JSON object")
    name = raw.get("event")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise EventInvalid("bad_event", "event must be a name of 1–200 characters")
    ts = parse_ts(raw.get("ts"), now=now)
    visitor_id = _ident(raw.get("visitor_id"), "visitor_id", required=True)
    if api_key_id:
        visitor_id = outside_id(api_key_id, visitor_id)
    event_id = _ident(raw.get("event_id"), "event_id", required=False)
    user_id = raw.get("user_id")
    if user_id is not None:
        if isinstance(user_id, str) and user_id.isdecimal():
            user_id = int(user_id)
        if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id < 0:
            raise EventInvalid("bad_user_id", "user_id must be a non-negative integer")
    url = _text(raw, "url")
    referrer = _text(raw, "referrer")
    props = raw.get("props") or {}
    if not isinstance(props, dict):
        raise EventInvalid("bad_props", "props must be an object")
    name = name.strip()
    sent_network = ""
    if props:
        if "$ip" in props or "ip" in props:
            props, sent_network = _without_ip(props)
        if api_key_id and name in LINKED_ID_PROPS:
            props = _linked_ids_scoped(props, LINKED_ID_PROPS[name], api_key_id)
    row = {
        **ROW_TEMPLATE,
        "event_id": event_id or new_event_id(),
        "event": name,
        "ts": ts,
        "visitor_id": visitor_id,
        "user_id": user_id or 0,
        "url": url,
        "referrer": referrer,
        "origin": origin,
        "api_key_id": api_key_id,
    }
    if props:
        _props_into(row, props)
    if client is not None:
        # A capture request may come from a shop's server: a missing user agent is no sign of a bot.
        reason = (
            bot_reason(method="POST", user_agent=client.user_agent, headers={}) if client.user_agent else ""
        )
        row.update(
            user_agent=client.user_agent[:512],
            device=device_class(client.user_agent),
            ip=ip_anonymous(client.ip),
            is_bot=1 if reason else 0,
            bot_reason=reason,
        )
    if sent_network:
        row["ip"] = sent_network  # the browser's, sent by a shop's server on its behalf
    if _is_landing(name, url, referrer):
        row_with_channel(row, _landing_channel(url, referrer))
    return row


# Where PostHog's SDKs ($ip) and shops (ip) put the browser's address. A raw address is never stored.
IP_PROPS = ("$ip", "ip")


def _without_ip(props: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """props without the addresses in it, and the network of the first valid one ("" when none is)."""
    kept = {key: value for key, value in props.items() if key not in IP_PROPS}
    for key in IP_PROPS:
        sent = props.get(key)
        network = ip_anonymous(sent) if isinstance(sent, str) else ""
        if network:
            return kept, network
    return kept, ""


# Identity merges name a second id in props: the anonymous id an $identify takes over, the id an alias
# points to. Like the event's own id, it is read in the sending key's namespace (see 0002_derived_views.sql).
LINKED_ID_PROPS = {"$identify": "$anon_distinct_id", "$create_alias": "alias"}


def _linked_ids_scoped(props: dict[str, Any], prop: str, api_key_id: int) -> dict[str, Any]:
    linked = props.get(prop)
    if isinstance(linked, int) and not isinstance(linked, bool):
        linked = str(linked)
    if not isinstance(linked, str) or not linked:
        return props
    return {**props, prop: outside_id(api_key_id, linked)}


def _props_into(row: dict[str, Any], props: dict[str, Any]) -> None:
    """Check `props` and copy it, with the order facts it carries, into the row."""
    props_json = json.dumps(props, ensure_ascii=False, separators=(",", ":"), default=str)
    if len(props_json) > MAX_PROPS_BYTES:
        raise EventInvalid("props_too_large", f"props is larger than {MAX_PROPS_BYTES} bytes")
    revenue = props.get("revenue", 0)
    if isinstance(revenue, bool) or not isinstance(revenue, int) or abs(revenue) > 10**15:
        raise EventInvalid("bad_revenue", "props.revenue must be an integer amount in minor units")
    currency = props.get("currency", "")
    if currency and (not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha()):
        raise EventInvalid("bad_currency", "props.currency must be a three-letter ISO 4217 code")
    row["props"] = props_json
    row["revenue"] = revenue
    row["currency"] = currency.upper() if currency else ""
    row["order_id"] = _ident(props.get("order_id"), "order_id", required=False)
    row["deal_id"] = _int_prop(props, "deal_id")
    row["post_id"] = _int_prop(props, "post_id")


@lru_cache(maxsize=16_384)
def _landing_channel(url: str, referrer: str) -> Channel:
    # Batches repeat the same pages and referrers; links behind `wt_s` never change once made.
    return visit_channel(url=url, referrer=referrer)


LANDING_EVENTS = frozenset({"pageview", "$pageview", "landing", "session_start"})


def _is_landing(event: str, url: str, referrer: str) -> bool:
    """Page views are classified; other events only when they carry a referrer or a campaign tag.

    An `order_paid` sent with its thank-you page URL must not read as a new "direct" visit.
    """
    if event in LANDING_EVENTS:
        return bool(url or referrer)
    return (
        bool(referrer)
        or "utm_" in url
        or "wt_s=" in url
        or any(f"{click_id}=" in url for click_id in GOOGLE_CLICK_IDS)
    )


def _int_prop(props: dict[str, Any], key: str) -> int:
    value = props.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    return 0


def events_ingest(
    *,
    events: Sequence[Any],
    origin: str,
    api_key_id: int = 0,
    api_key_ids: Sequence[int] | None = None,
    refused: Sequence[Rejection] = (),
    client: ClientFacts | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Validate each event on its own, store the good ones (once per key and event_id), report the rest.

    The events come with one key (`api_key_id`) or each with its own (`api_key_ids`, by index).
    Those `refused` already (for their key, say) are left out and reported with the rest.
    """
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    rejected = list(refused)
    skipped = {rejection.index for rejection in refused}
    key_id = api_key_id
    for index, raw in enumerate(events):
        if skipped and index in skipped:
            continue
        if api_key_ids is not None:
            key_id = api_key_ids[index]
        try:
            rows.append(event_parse(raw, now=now, origin=origin, api_key_id=key_id, client=client))
        except EventInvalid as exc:
            rejected.append(Rejection(index=index, code=exc.code, reason=exc.reason))
    if skipped:
        rejected.sort(key=lambda rejection: rejection.index)
    outcome = events_store(rows, check_existing=True)
    return IngestResult(accepted=outcome.stored, duplicates=outcome.duplicates, rejected=rejected)


@lru_cache(maxsize=16_384)
def _click_channel(facts: LinkFacts, referrer: str) -> Channel:
    # A click's channel depends only on its link and referrer, and both repeat a lot.
    return channel_of_visit(url="", referrer=referrer, link=facts, site_hosts=site_hosts())


# The click line's fields from `event` on (see spool.CLICK_COLUMNS), all taken from the link and referrer.
_CLICK_TAIL = CLICK_COLUMNS[CLICK_COLUMNS.index("event") :]


def click_line_tail(link: ResolvedLink, referrer: str) -> str:
    """The end of a click line, computed once per link and referrer and kept in `link.click_rows`."""
    tail = link.click_rows.get(referrer)
    if tail is None:
        tail = click_line_tail_text(link, referrer)
        if len(link.click_rows) >= 64:  # referrers are chosen by the client: keep the memory bounded
            link.click_rows.clear()
        link.click_rows[referrer] = tail
    return tail


def click_line_tail_text(link: ResolvedLink, referrer: str) -> str:
    """The end of a click line (the fields from `event` on, without the newline), not cached."""
    facts = link.facts
    row = event_row(
        EventName.LINK_CLICK,
        _EPOCH,
        "",
        url=link.target_url,
        referrer=referrer[:MAX_TEXT],
        deal_id=facts.deal_id or 0,
        # The post the link stands in and who made it (for a link out of a post: the post and its
        # author), whatever channel the click is counted under.
        post_id=facts.post_id or 0,
        sharer_id=facts.sharer_id or 0,
        origin="click",
    )
    row_with_channel(row, _click_channel(facts, referrer))
    return "\t".join(
        tsv_text(value) if isinstance(value, str) else str(value) for value in map(row.get, _CLICK_TAIL)
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UA_PARTS_MAX = 8192
# user agent -> `click_agent_fields` of it; the /s/ fast path reads it directly.
click_agents: dict[str, tuple[str, str]] = {}


def click_agent_fields(user_agent: str) -> tuple[str, str]:
    """(bot reason of a plain GET, the line's `device` and `user_agent` fields) of a user agent."""
    part = click_agents.get(user_agent)
    if part is None:
        reason = bot_reason(method="GET", user_agent=user_agent, headers={})
        part = (reason, f"{device_class(user_agent)}\t{tsv_text(user_agent[:512])}")
        if len(click_agents) >= _UA_PARTS_MAX:  # user agents are chosen by the client
            click_agents.clear()
        click_agents[user_agent] = part
    return part


# The same per user agent, keyed by the header's bytes and with the fields as UTF-8: the /s/ fast path
# builds its line as bytes and never decodes a known user agent.
click_agents_raw: dict[bytes, tuple[str, bytes]] = {}


def click_agent_fields_raw(user_agent: bytes) -> tuple[str, bytes]:
    """As `click_agent_fields`, for a user-agent header's value (ISO-8859-1, as ASGI gives it)."""
    part = click_agents_raw.get(user_agent)
    if part is None:
        reason, fields = click_agent_fields(user_agent.decode("latin1"))
        part = (reason, fields.encode())
        if len(click_agents_raw) >= _UA_PARTS_MAX:
            click_agents_raw.clear()
        click_agents_raw[user_agent] = part
    return part


def click_line(
    link: ResolvedLink,
    visitor_id: str,
    user_id: int | None,
    referrer: str,
    user_agent: str,
    ip: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    ts: float | None = None,
) -> str:
    """The click as a line of the click spool. `visitor_id` must hold no tab, newline, backslash or NUL
    (a valid visitor cookie cannot; `click_add` escapes any other). The /s/ fast path
    (`tracking.asgi`) builds the same line inline.

    Bots, HEAD, prefetch and repeats (one counted click per link, visitor and hour) are kept but
    flagged. With Redis (several processes) repeats are flagged when the line is stored instead.
    """
    reason, ua_fields = click_agent_fields(user_agent)
    if method != "GET" or headers:
        reason = bot_reason(method=method, user_agent=user_agent, headers=headers or {})
    if ts is None:
        ts = time.time()
    link_id = link.facts.link_id
    if not reason and click_first_in_process(link_id, visitor_id, ts) is False:
        reason = "duplicate"
    ms = int(ts * 1000)  # the store keeps milliseconds
    return (
        f"{link_id}\t{visitor_id}\t{1 if reason else 0}\t{reason}\t{ms // 1000}.{ms % 1000:03d}\t"
        f"{new_event_id()}\t{user_id or 0}\t{ua_fields}\t{ip_anonymous(ip)}\t{click_line_tail(link, referrer)}\n"
    )


def click_add(
    *,
    link: ResolvedLink,
    visitor_id: str,
    user_id: int | None,
    referrer: str,
    user_agent: str,
    ip: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    now: datetime | None = None,
) -> str:
    """Record a click on a short link: on disk in the click spool when this returns; its line is returned."""
    line = click_line(
        link,
        tsv_text(visitor_id),
        user_id,
        referrer,
        user_agent,
        ip,
        method,
        headers,
        now.timestamp() if now else None,
    )
    write_buffer().add_click(line)
    return line


def click_record(
    *,
    link: ResolvedLink,
    visitor_id: str,
    user_id: int | None,
    referrer: str,
    client: ClientFacts,
    now: datetime | None = None,
) -> str:
    """As `click_add`, with the request's facts gathered in `client`."""
    return click_add(
        link=link,
        visitor_id=visitor_id,
        user_id=user_id,
        referrer=referrer,
        user_agent=client.user_agent,
        ip=client.ip,
        method=client.method,
        headers=client.headers,
        now=now,
    )


def beacon_record(
    *,
    event: str,
    visitor_id: str,
    user_id: int | None,
    url: str,
    referrer: str,
    client: ClientFacts,
    props: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A page view (or other browser event) from /collect, through the write buffer.

    The page's `props` are kept as sent (an address in them dropped), but a browser's word is not
    money: revenue, orders and deals come from the server's own events, never from a beacon's props.
    Raises EventInvalid for props over MAX_PROPS_BYTES.
    """
    props_json = "{}"
    if props:
        props_json = json.dumps(_without_ip(props)[0], ensure_ascii=False, separators=(",", ":"), default=str)
        if len(props_json) > MAX_PROPS_BYTES:
            raise EventInvalid("props_too_large", f"props is larger than {MAX_PROPS_BYTES} bytes")
    reason = bot_reason(method="POST", user_agent=client.user_agent, headers={})
    row = event_row(
        event,
        datetime.now(UTC),
        visitor_id,
        user_id=user_id or 0,
        url=url[:MAX_TEXT],
        referrer=referrer[:MAX_TEXT],
        origin="beacon",
        props=props_json,
        device=device_class(client.user_agent),
        user_agent=client.user_agent[:512],
        ip=ip_anonymous(client.ip),
        is_bot=1 if reason else 0,
        bot_reason=reason,
    )
    row_with_channel(row, _landing_channel(row["url"], row["referrer"]))
    write_buffer().add(row)
    return row
