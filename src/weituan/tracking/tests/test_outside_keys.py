"""What a site may write with its API key: only ids of its own, and event ids that are its own."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from weituan.tracking.buffer import write_buffer
from weituan.tracking.queries import api_key_resolve, first_touch_of, person_of
from weituan.tracking.services.keys import api_key_issue
from weituan.tracking.store import analytics_store

NOW = datetime.now(UTC).replace(microsecond=0)
COOKIE = "wtcookie0001abcd"


@pytest.fixture
def weituan_visitor(shopper) -> str:
    """A Weituan visitor, signed in as the shopper, who first came from Weibo just now."""
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148")
    client.force_login(shopper)
    client.cookies["wt_vid"] = COOKIE
    body = {"url": "https://weituan.example/deals/3", "referrer": "https://weibo.com/u/8"}
    assert client.post("/collect", data=json.dumps(body), content_type="text/plain").status_code == 204
    write_buffer().flush()
    assert person_of(visitor_id=COOKIE) == f"u:{shopper.pk}"
    return COOKIE


def weituan_facts_unchanged(shopper) -> None:
    """The shopper's first touch is still the Weibo visit, and the cookie still belongs to the shopper."""
    for first in (first_touch_of(user_id=shopper.pk), first_touch_of(visitor_id=COOKIE)):
        assert first is not None
        assert (first.visitor_id, first.channel, first.source) == (COOKIE, "social", "weibo.com")
    assert person_of(visitor_id=COOKIE) == f"u:{shopper.pk}"
    rows = analytics_store().query(
        "SELECT alias_id, person_id FROM identities WHERE alias_id = {c:String} OR person_id = {u:String}",
        {"c": COOKIE, "u": f"u:{shopper.pk}"},
    )
    assert rows == [{"alias_id": COOKIE, "person_id": f"u:{shopper.pk}"}]


def test_a_key_cannot_take_over_a_weituan_visitor_or_user_through_the_api(weituan_visitor, shopper, site_key):
    key_id = api_key_resolve(site_key)
    old = (NOW - timedelta(days=30)).isoformat()
    later = [(NOW + timedelta(minutes=minutes)).isoformat() for minutes in (10, 11, 12)]
    baidu = "https://www.baidu.com/s?wd=x"
    events = [
        # An older first touch for the Weituan user and for the Weituan cookie...
        {"event": "pageview", "ts": old, "visitor_id": f"u:{shopper.pk}", "referrer": baidu},
        {"event": "pageview", "ts": old, "visitor_id": COOKIE, "referrer": baidu},
        # ...and links that would move the cookie to the shop's people.
        {"event": "$identify", "ts": later[0], "visitor_id": "shop-person-1",
         "props": {"$anon_distinct_id": COOKIE}},
        {"event": "$create_alias", "ts": later[1], "visitor_id": COOKIE, "props": {"alias": "shop-person-2"}},
        {"event": "order_paid", "ts": later[2], "visitor_id": COOKIE, "user_id": shopper.pk},
    ]  # fmt: skip
    response = Client().post(
        "/api/v1/events", data=json.dumps(events), content_type="application/json", HTTP_X_API_KEY=site_key
    )
    assert response.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    weituan_facts_unchanged(shopper)
    # The shop's events live in its own namespace, where they mean what the shop meant.
    stored = analytics_store().query("SELECT DISTINCT visitor_id FROM events WHERE origin = 'api' ORDER BY 1")
    assert [row["visitor_id"] for row in stored] == [
        f"k{key_id}:shop-person-1", f"k{key_id}:u:{shopper.pk}", f"k{key_id}:{COOKIE}",
    ]  # fmt: skip
    shop_first = first_touch_of(visitor_id=f"k{key_id}:u:{shopper.pk}")
    assert shop_first is not None and (shop_first.channel, shop_first.source) == ("search", "baidu.com")
    assert person_of(visitor_id=f"k{key_id}:{COOKIE}") == f"k{key_id}:u:{shopper.pk}"
    links = analytics_store().query(
        "SELECT alias_id, person_id FROM identities WHERE alias_id != {c:String} ORDER BY ts",
        {"c": COOKIE},
    )
    assert links == [
        {"alias_id": f"k{key_id}:{COOKIE}", "person_id": f"k{key_id}:shop-person-1"},
        {"alias_id": f"k{key_id}:{COOKIE}", "person_id": f"k{key_id}:shop-person-2"},
        {"alias_id": f"k{key_id}:{COOKIE}", "person_id": f"k{key_id}:u:{shopper.pk}"},
    ]


def test_a_key_cannot_take_over_a_weituan_visitor_or_user_through_posthog(weituan_visitor, shopper, site_key):
    key_id = api_key_resolve(site_key)
    old = (NOW - timedelta(days=30)).isoformat()
    later = [(NOW + timedelta(minutes=minutes)).isoformat() for minutes in (10, 11)]

    def ph(name: str, distinct_id: str, at: str, **props):
        return {"event": name, "distinct_id": distinct_id, "timestamp": at, "properties": props}

    batch = [
        ph("$pageview", f"u:{shopper.pk}", old, **{"$referrer": "https://www.baidu.com/s?wd=x"}),
        ph("$pageview", COOKIE, old, **{"$referrer": "https://www.baidu.com/s?wd=x"}),
        ph("$identify", "shop-customer-9", later[0], **{"$anon_distinct_id": COOKIE}),
        ph("$create_alias", COOKIE, later[1], alias="shop-customer-10"),
    ]
    response = Client().post(
        "/batch/", data=json.dumps({"api_key": site_key, "batch": batch}), content_type="application/json"
    )
    assert (response.status_code, response.json()["accepted"]) == (200, 4)
    weituan_facts_unchanged(shopper)
    assert person_of(visitor_id=f"k{key_id}:{COOKIE}") == f"k{key_id}:shop-customer-10"
    stored = analytics_store().query("SELECT visitor_id FROM events WHERE origin = 'posthog' ORDER BY ts, 1")
    assert [row["visitor_id"] for row in stored] == [
        f"k{key_id}:u:{shopper.pk}", f"k{key_id}:{COOKIE}", f"k{key_id}:shop-customer-9", f"k{key_id}:{COOKIE}",
    ]  # fmt: skip


def test_each_key_has_its_own_event_ids(db, site_key):
    other_key = api_key_issue(name="另一家店").key
    order = {"event": "order_paid", "ts": NOW.isoformat(), "visitor_id": "buyer-1", "event_id": "order-1",
             "props": {"order_id": "1", "revenue": 990, "currency": "CNY"}}  # fmt: skip

    def send(key: str) -> dict:
        return (
            Client()
            .post(
                "/api/v1/events",
                data=json.dumps([order]),
                content_type="application/json",
                HTTP_X_API_KEY=key,
            )
            .json()
        )

    assert send(site_key) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert send(other_key) == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert send(other_key) == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert send(site_key) == {"accepted": 0, "duplicates": 1, "rejected": []}
    stored = analytics_store().query(
        "SELECT api_key_id, revenue FROM events WHERE event_id = 'order-1' ORDER BY 1"
    )
    assert stored == [
        {"api_key_id": api_key_resolve(site_key), "revenue": 990},
        {"api_key_id": api_key_resolve(other_key), "revenue": 990},
    ]
