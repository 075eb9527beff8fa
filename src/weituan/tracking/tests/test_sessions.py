"""Sessions (30 minutes of inactivity), first touch kept forever, identity merge, payment-gateway returns."""

from datetime import UTC, datetime, timedelta

import pytest

from weituan.tracking import facade
from weituan.tracking.services.events import events_ingest
from weituan.tracking.store import analytics_store

DAY1 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SITE = "https://weituan.example"


def ev(at: datetime, visitor: str, *, event: str = "pageview", referrer: str = "", path: str = "/", **extra):
    return {"event": event, "ts": at.isoformat(), "visitor_id": visitor, "url": SITE + path,
            "referrer": referrer, **extra}  # fmt: skip


@pytest.fixture
def journey(db, shopper):
    share = facade.short_link_for_share(sharer_id=99, post_id=5, target_url=SITE + "/d/5", hop_depth=1)
    phone, laptop = "phone-visitor-1", "laptop-visitor-1"
    events = [
        # Day 0: on the phone, a friend's repost (hop 1) brings the first visit.
        ev(DAY1 - timedelta(days=1), phone, path=f"/d/5?wt_s={share.code}", referrer="https://weibo.com/"),
        # Day 1 on the laptop: from Weibo, browses, pays at Alipay 50 minutes later and comes back.
        ev(DAY1, laptop, referrer="https://weibo.com/u/1"),
        ev(DAY1 + timedelta(minutes=10), laptop, referrer=SITE + "/", path="/d/5"),
        ev(DAY1 + timedelta(minutes=60), laptop, referrer="https://mclient.alipay.com/cashier", path="/paid"),
        ev(DAY1 + timedelta(minutes=61), laptop, event="order_paid", props={"revenue": 990}),
        # Day 2: typed the address; logs in, which links the laptop to the account.
        ev(DAY1 + timedelta(days=1), laptop, user_id=shopper.pk),
        # Day 3: from Google.
        ev(DAY1 + timedelta(days=2), laptop, referrer="https://www.google.com/"),
    ]
    result = events_ingest(events=events, origin="api")
    assert (result.accepted, result.rejected) == (7, [])
    return share, phone, laptop


def test_sessions_split_after_thirty_idle_minutes_and_keep_their_source(journey, shopper):
    sessions = facade.sessions_between(DAY1, DAY1 + timedelta(days=3), person_id=f"u:{shopper.pk}")
    assert [(s.number, s.channel, s.events) for s in sessions] == [
        (1, "social", 2),
        (2, "social", 2),  # back from Alipay after 50 idle minutes: a new session, not a new source
        (3, "direct", 1),
        (4, "search", 1),
    ]
    assert sessions[1].revenue == 990
    # The session resumed after the payment page keeps the whole source, not only its channel.
    assert [(s.source, s.medium) for s in sessions] == [
        ("weibo.com", "social"),
        ("weibo.com", "social"),
        ("(direct)", "(none)"),
        ("google.com", "organic"),
    ]


def test_a_resumed_session_keeps_the_share_hop_of_the_last_source(db):
    share = facade.short_link_for_share(sharer_id=42, post_id=7, target_url=SITE + "/d/7", hop_depth=2)
    visitor = "v-resumed-1"
    events = [
        ev(DAY1, visitor, path=f"/d/7?wt_s={share.code}", referrer="https://weibo.com/"),
        # Back 45 minutes later from the payment gateway, then 45 more from a page of the site itself:
        # two new sessions, neither of them a new source.
        ev(
            DAY1 + timedelta(minutes=45), visitor, referrer="https://mclient.alipay.com/cashier", path="/paid"
        ),
        ev(DAY1 + timedelta(minutes=90), visitor, referrer=SITE + "/orders", path="/orders/1"),
        # A new source the next day replaces it.
        ev(DAY1 + timedelta(days=1), visitor, referrer="https://www.baidu.com/s?wd=x"),
    ]
    assert events_ingest(events=events, origin="api").accepted == 4
    sessions = facade.sessions_between(DAY1, DAY1 + timedelta(days=2), person_id=visitor)
    shared = ("microblog", "weibo.com", "repost", 2, 42, share.id)
    assert [
        (s.number, s.channel, s.source, s.medium, s.hop_depth, s.sharer_id, s.link_id) for s in sessions
    ] == [
        (1, *shared),
        (2, *shared),
        (3, *shared),
        (4, "search", "baidu.com", "organic", 0, 0, 0),
    ]


def test_first_touch_is_the_earliest_source_of_every_merged_visitor(journey, shopper):
    share, phone, laptop = journey
    # The laptop alone first came from Weibo.
    laptop_only = facade.first_touch_of(visitor_id="laptop-visitor-unmerged")
    assert laptop_only is None
    laptop_first = facade.first_touch_of(visitor_id=laptop)
    assert laptop_first is not None and laptop_first.channel == "social"
    # Once the phone is linked to the account too, the account's first touch is the repost from day 0.
    events_ingest(
        events=[ev(DAY1 + timedelta(days=4), phone, user_id=shopper.pk, referrer=SITE)], origin="api"
    )
    first = facade.first_touch_of(user_id=shopper.pk)
    assert first is not None
    assert (first.channel, first.hop_depth, first.sharer_id, first.link_id) == ("microblog", 1, 99, share.id)
    assert first.ts == DAY1 - timedelta(days=1)


def test_first_touch_survives_when_events_are_gone(journey):
    _, _, laptop = journey
    analytics_store().execute("TRUNCATE TABLE events")
    first = facade.first_touch_of(visitor_id=laptop)
    assert first is not None and (first.channel, first.source) == ("social", "weibo.com")


def test_a_payment_gateway_return_never_becomes_the_first_touch(db):
    events_ingest(
        events=[ev(DAY1, "v-pay", referrer="https://www.paypal.com/checkout"),
                ev(DAY1 + timedelta(hours=2), "v-pay", referrer="https://news.example.org/")],
        origin="api",
    )  # fmt: skip
    first = facade.first_touch_of(visitor_id="v-pay")
    assert first is not None and (first.channel, first.source) == ("referral", "news.example.org")


# The first event lands 0.9 s into a second, so a gap a hair over 30 minutes reaches only 1800 whole
# seconds later: the boundary is measured in milliseconds, not in seconds crossed.
@pytest.mark.parametrize(
    ("idle", "events_per_session"),
    [
        (timedelta(minutes=29, seconds=59), [2]),
        (timedelta(minutes=29, seconds=59, milliseconds=999), [2]),
        (timedelta(minutes=30), [2]),  # exactly 30 idle minutes: still the same session
        (timedelta(minutes=30, milliseconds=1), [1, 1]),
        (timedelta(minutes=30, seconds=1), [1, 1]),
    ],
    ids=["29:59", "29:59.999", "30:00", "30:00.001", "30:01"],
)
def test_a_session_ends_after_more_than_thirty_idle_minutes(db, idle, events_per_session):
    first = DAY1 + timedelta(milliseconds=900)
    events = [
        ev(first, "v-idle", referrer="https://weibo.com/"),
        ev(first + idle, "v-idle", referrer=SITE + "/", path="/d/1"),  # the next page of the visit
    ]
    assert events_ingest(events=events, origin="api").accepted == 2
    sessions = facade.sessions_between(DAY1, DAY1 + timedelta(hours=1), person_id="v-idle")
    assert [s.events for s in sessions] == events_per_session
    assert [s.number for s in sessions] == list(range(1, len(events_per_session) + 1))
    # A new session after the break still belongs to the source that brought the visitor.
    assert [(s.channel, s.source) for s in sessions] == [("social", "weibo.com")] * len(events_per_session)
    assert sessions[-1].ended_at == first + idle


def test_a_landing_from_our_own_pages_keeps_the_source_unless_its_tag_names_one(db):
    visitor = "v-internal-tags"
    events = [
        ev(DAY1, visitor, referrer="https://weibo.com/u/1"),
        # An hour later, from one of our own pages, with a campaign tag and a share token that names no
        # link: a new session, but still the visit Weibo brought.
        ev(
            DAY1 + timedelta(hours=1),
            visitor,
            referrer=SITE + "/d/1",
            path="/d/2?utm_campaign=x&wt_s=Stale123",
        ),
        # Back from the payment gateway with a content tag: the same.
        ev(
            DAY1 + timedelta(hours=2),
            visitor,
            referrer="https://mclient.alipay.com/",
            path="/paid?utm_content=a",
        ),
        # A newsletter link that passed through our own page names its source: that starts one.
        ev(
            DAY1 + timedelta(hours=3),
            visitor,
            referrer=SITE + "/",
            path="/d/3?utm_source=newsletter&utm_medium=email",
        ),
    ]
    assert events_ingest(events=events, origin="api").accepted == 4
    sessions = facade.sessions_between(DAY1, DAY1 + timedelta(days=1), person_id=visitor)
    assert [(s.number, s.channel, s.source, s.medium) for s in sessions] == [
        (1, "social", "weibo.com", "social"),
        (2, "social", "weibo.com", "social"),
        (3, "social", "weibo.com", "social"),
        (4, "email", "newsletter", "email"),
    ]
    rows = analytics_store().query(
        "SELECT channel, source FROM events WHERE visitor_id = {v:String} ORDER BY ts", {"v": visitor}
    )
    assert [(row["channel"], row["source"]) for row in rows] == [
        ("social", "weibo.com"),
        ("", ""),
        ("", ""),
        ("email", "newsletter"),
    ]
    first = facade.first_touch_of(visitor_id=visitor)
    assert first is not None and (first.channel, first.source) == ("social", "weibo.com")
