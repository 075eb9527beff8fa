"""No ingestion path stores a raw IP address: only its network (/24, /48), in the `ip` column."""

import json
from datetime import UTC, datetime
from typing import Any

from django.test import Client

from weituan.tracking.buffer import write_buffer
from weituan.tracking.store import analytics_store

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SHOP_SERVER = "203.0.113.9"  # a shop's server, sending its customers' events


def stored_rows() -> list[dict[str, Any]]:
    return analytics_store().query("SELECT * FROM events ORDER BY event")


def assert_no_raw_address(rows: list[dict[str, Any]], *addresses: str) -> None:
    for row in rows:
        for column, value in row.items():
            for address in addresses:
                assert address not in str(value), f"{address} stored in {column}"


def test_the_beacon_keeps_the_network_of_the_address(db):
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="198.51.100.77")
    body = {
        "url": "https://weituan.example/d/1",
        "referrer": "https://weibo.com/",
        "props": {"ip": "192.0.2.44"},
    }
    assert client.post("/collect", data=json.dumps(body), content_type="text/plain").status_code == 204
    write_buffer().flush()
    rows = stored_rows()
    assert [(row["origin"], row["ip"], row["props"]) for row in rows] == [("beacon", "198.51.100.0", "{}")]
    assert_no_raw_address(rows, "198.51.100.77", "192.0.2.44")


def test_posthog_ip_property_is_kept_as_its_network_only(site_key):
    at = datetime.now(UTC).isoformat()
    batch = [
        {"event": "deal_view", "distinct_id": "c1", "timestamp": at,
         "properties": {"$ip": "198.51.100.77", "deal_id": 3, "plan": "gold"}},
        {"event": "signup", "distinct_id": "c2", "timestamp": at, "properties": {"$ip": "2001:db8:1234:5678::9"}},
        {"event": "logout", "distinct_id": "c3", "timestamp": at, "properties": {"$ip": "not an address"}},
    ]  # fmt: skip
    response = Client().post(
        "/batch/", data=json.dumps({"api_key": site_key, "batch": batch}), content_type="application/json",
        HTTP_USER_AGENT="posthog-python/7.0", REMOTE_ADDR=SHOP_SERVER,
    )  # fmt: skip
    assert response.json()["accepted"] == 3
    rows = stored_rows()
    assert [(row["event"], row["ip"], json.loads(row["props"])) for row in rows] == [
        ("deal_view", "198.51.100.0", {"deal_id": 3, "plan": "gold"}),
        ("logout", "203.0.113.0", {}),  # no valid address sent: the request's, made anonymous
        ("signup", "2001:db8:1234::", {}),
    ]
    assert_no_raw_address(rows, "198.51.100.77", "2001:db8:1234:5678", SHOP_SERVER)


def test_the_native_api_keeps_the_network_of_an_address_in_props(site_key):
    at = datetime.now(UTC).isoformat()
    events = [
        {
            "event": "order_paid",
            "ts": at,
            "visitor_id": "v1",
            "props": {"ip": "198.51.100.77", "revenue": 500},
        },
        {
            "event": "pageview",
            "ts": at,
            "visitor_id": "v2",
            "props": {"$ip": "192.0.2.44", "ip": "192.0.2.45"},
        },
    ]
    response = Client().post(
        "/api/v1/events", data=json.dumps(events), content_type="application/json", HTTP_X_API_KEY=site_key,
        REMOTE_ADDR=SHOP_SERVER,
    )  # fmt: skip
    assert response.json()["accepted"] == 2
    rows = stored_rows()
    assert [(row["event"], row["ip"], json.loads(row["props"]), row["revenue"]) for row in rows] == [
        ("order_paid", "198.51.100.0", {"revenue": 500}, 500),
        ("pageview", "192.0.2.0", {}, 0),
    ]
    assert_no_raw_address(rows, "198.51.100.77", "192.0.2.44", "192.0.2.45", SHOP_SERVER)


def test_a_beacons_props_are_kept_but_never_as_money(db):
    client = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="198.51.100.77")
    body = {
        "event": "add_to_cart",
        "url": "https://weituan.example/deals/7/",
        "props": {
            "sku": "月饼-6",
            "qty": 2,
            "revenue": 99900,
            "currency": "CNY",
            "order_id": "o-1",
            "ip": "192.0.2.4",
        },
    }
    assert client.post("/collect", data=json.dumps(body), content_type="text/plain").status_code == 204
    write_buffer().flush()
    (row,) = stored_rows()
    assert (row["event"], row["revenue"], row["currency"], row["order_id"]) == ("add_to_cart", 0, "", "")
    assert json.loads(row["props"]) == {
        "sku": "月饼-6",
        "qty": 2,
        "revenue": 99900,
        "currency": "CNY",
        "order_id": "o-1",
    }
    for bad, code in (({"props": [1, 2]}, "bad_props"), ({"props": {"x": "x" * 40_000}}, "props_too_large")):
        refused = client.post(
            "/collect", data=json.dumps({"url": "https://weituan.example/", **bad}), content_type="text/plain"
        )
        assert (refused.status_code, refused.json()["code"]) == (400, code)
    write_buffer().flush()
    assert len(stored_rows()) == 1
