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
