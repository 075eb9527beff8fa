"""Reads of tracking: links, sessions (sessionized in ClickHouse SQL), first touch and click counts."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from weituan.tracking.models import ShortLink
from weituan.tracking.store import analytics_store

SESSION_GAP_SECONDS = 1800

# The person behind each alias (cookie id, anonymous distinct_id): the latest identity link wins.
_PERSONS = "SELECT alias_id, argMax(person_id, ts) AS person_id FROM identities GROUP BY alias_id"

# Sessions: a new one starts after more than 30 minutes without events (exactly 30 is the same session),
# measured in milliseconds: whole seconds crossed would read 30:00.9 of idle time as 30:00. A session's source is its first new
# source; when it has none (internal or payment-gateway landings, a visit resumed after a break) it
# keeps the whole of the last source seen: channel, source, medium, hop depth, sharer and link.
SESSIONS_SQL = """
WITH
    persons AS (__PERSONS__),
    ev AS (
        SELECT if(p.person_id != '', p.person_id, e.visitor_id) AS person, e.ts AS ts, e.event AS event,
               e.channel AS channel, e.revenue AS revenue,
               tuple(toString(e.channel), e.source, toString(e.medium), e.hop_depth, e.sharer_id, e.link_id)
                   AS touch
        FROM events AS e LEFT JOIN persons AS p ON p.alias_id = e.visitor_id
        WHERE e.is_bot = 0 AND e.ts >= {start:DateTime64(3, 'UTC')} AND e.ts < {end:DateTime64(3, 'UTC')}
    ),
    marked AS (
        SELECT *,
            if(dateDiff('millisecond', lagInFrame(ts, 1, toDateTime64(0, 3, 'UTC')) OVER w, ts)
               > __GAP_MS__, 1, 0) AS starts,
            anyLastIf(touch, channel != '') OVER w AS carried
        FROM ev
        WINDOW w AS (PARTITION BY person ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ),
    numbered AS (
        SELECT *, sum(starts) OVER (PARTITION BY person ORDER BY ts
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS session_no
        FROM marked
    ),
    grouped AS (
        SELECT person, session_no, min(ts) AS started_at, max(ts) AS ended_at, count() AS events,
               argMinIf(touch, ts, channel != '') AS own, argMin(carried, ts) AS resumed,
               countIf(event = 'order_placed') AS orders, sumIf(revenue, event = 'order_paid') AS revenue
        FROM numbered
        WHERE {person:String} = '' OR person = {person:String}
        GROUP BY person, session_no
    )
SELECT person, session_no, started_at, ended_at, events, orders, revenue,
       multiIf(own.1 != '', own, resumed.1 != '', resumed,
               tuple('direct', '(direct)', '(none)', toUInt16(0), toUInt64(0), toUInt64(0))) AS touch,
       touch.1 AS channel, touch.2 AS source, touch.3 AS medium, touch.4 AS hop_depth,
       touch.5 AS sharer_id, touch.6 AS link_id
FROM grouped
ORDER BY person, session_no
""".replace("__PERSONS__", _PERSONS).replace("__GAP_MS__", str(SESSION_GAP_SECONDS * 1000))


FIRST_TOUCH_SQL = """
SELECT visitor_id, ts, channel, source, medium, campaign, link_id, sharer_id, hop_depth
FROM first_touch FINAL
WHERE visitor_id IN (
    SELECT alias_id FROM (__PERSONS__) WHERE person_id = {p:String}
    UNION ALL SELECT {p:String} UNION ALL SELECT {v:String}
)
ORDER BY ts LIMIT 1
""".replace("__PERSONS__", _PERSONS)


@dataclass(frozen=True)
class VisitSession:
    person_id: str
    number: int
    started_at: datetime
    ended_at: datetime
    events: int
    channel: str
    source: str
    medium: str
    hop_depth: int
    sharer_id: int
    link_id: int
    orders: int
    revenue: int


@dataclass(frozen=True)
class FirstTouch:
    visitor_id: str
    ts: datetime
    channel: str
    source: str
    medium: str
    campaign: str
    link_id: int
    sharer_id: int
    hop_depth: int


def person_of(*, visitor_id: str = "", user_id: int | None = None) -> str:
    """The person id: 'u:<id>' for a user, else the person the visitor was merged into, else the visitor."""
    if user_id:
        return f"u:{user_id}"
    rows = analytics_store().query(
        "SELECT argMax(person_id, ts) AS person FROM identities WHERE alias_id = {v:String}",
        {"v": visitor_id},
    )
    return rows[0]["person"] if rows and rows[0]["person"] else visitor_id


def sessions_between(start: datetime, end: datetime, *, person_id: str = "") -> list[VisitSession]:
    """Sessions of every person (or of one) with events in [start, end)."""
    rows = analytics_store().query(
        SESSIONS_SQL, {"start": _ch_time(start), "end": _ch_time(end), "person": person_id}
    )
    return [
        VisitSession(
            person_id=row["person"],
            number=int(row["session_no"]),
            started_at=datetime.fromisoformat(row["started_at"]),
            ended_at=datetime.fromisoformat(row["ended_at"]),
            events=int(row["events"]),
            channel=row["channel"],
            source=row["source"],
            medium=row["medium"],
            hop_depth=int(row["hop_depth"]),
            sharer_id=int(row["sharer_id"]),
            link_id=int(row["link_id"]),
            orders=int(row["orders"]),
            revenue=int(row["revenue"]),
        )
        for row in rows
    ]


def first_touch_of(*, visitor_id: str = "", user_id: int | None = None) -> FirstTouch | None:
    """The earliest source of a person across every alias merged into them, kept forever."""
    person = person_of(visitor_id=visitor_id, user_id=user_id)
    rows = analytics_store().query(
        FIRST_TOUCH_SQL,
        {"p": person, "v": visitor_id or person},
    )
    if not rows:
        return None
    row = rows[0]
    return FirstTouch(
        visitor_id=row["visitor_id"],
        ts=datetime.fromisoformat(row["ts"]),
        channel=row["channel"],
        source=row["source"],
        medium=row["medium"],
        campaign=row["campaign"],
        link_id=int(row["link_id"]),
        sharer_id=int(row["sharer_id"]),
        hop_depth=int(row["hop_depth"]),
    )


def link_click_counts(link_id: int) -> dict[str, int]:
    """Counted clicks and filtered ones (by reason) of a link."""
    rows = analytics_store().query(
        """
        SELECT if(is_bot = 1, bot_reason, 'counted') AS kind, count() AS n
        FROM events WHERE link_id = {link:UInt64} AND event = 'link_click'
        GROUP BY kind
        """,
        {"link": link_id},
    )
    return {row["kind"]: int(row["n"]) for row in rows}


def events_count(*, event: str = "", origin: str = "") -> int:
    return int(
        analytics_store().scalar(
            "SELECT count() FROM events WHERE ({e:String} = '' OR event = {e:String})"
            " AND ({o:String} = '' OR origin = {o:String})",
            {"e": event, "o": origin},
        )
        or 0
    )


def short_link_get(code: str) -> ShortLink | None:
    return ShortLink.objects.filter(code=code).first()


def _ch_time(moment: datetime) -> str:
    value = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def rows_of(sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run a ClickHouse SQL read on the analytics store (for insights)."""
    return analytics_store().query(sql, params)


def api_key_resolve(raw: str) -> int | None:
    """The id of a live API key, or None. Cached, since every ingestion request asks."""
    from django.core.cache import cache

    from weituan.tracking.models import ApiKey
    from weituan.tracking.services.keys import api_key_hash

    if not raw or len(raw) > 200:
        return None
    digest = api_key_hash(raw)
    cache_key = f"tracking:apikey:{digest}"
    cached = cache.get(cache_key)
    if cached is not None:
        return int(cached) or None
    key_id = (
        ApiKey.objects.filter(key_hash=digest, revoked_at__isnull=True).values_list("id", flat=True).first()
    )
    cache.set(cache_key, key_id or 0, 300)
    return key_id
