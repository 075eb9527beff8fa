"""PostHog-compatible capture: the real `posthog` SDK against a live server, and the payload variants."""

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.test import Client
from posthog import Posthog
from posthog.request import reset_sessions

from weituan.tracking.lz_string import lz_string_decode_base64
from weituan.tracking.queries import api_key_resolve, person_of
from weituan.tracking.services.events import MAX_BATCH
from weituan.tracking.services.keys import api_key_issue
from weituan.tracking.store import analytics_store
from weituan.tracking.tests.conftest import count
from weituan.tracking.tests.lz_string_compress import lz_string_compress_base64


def test_the_posthog_python_sdk_sends_events_that_land_in_the_store(live_server, site_key):
    client = Posthog(site_key, host=live_server.url, sync_mode=True, gzip=True)
    sent_id = str(uuid.uuid4())
    client.capture(
        "deal_view",
        distinct_id="ph-visitor-1",
        properties={"$current_url": "https://shop.example/deal/9", "$referrer": "https://weibo.com/u/5",
                    "deal_id": 9},
        uuid=sent_id,
    )  # fmt: skip
    client.capture("order_paid", distinct_id="ph-visitor-1", properties={"order_id": "A1", "revenue": 2500,
                                                                          "currency": "CNY"})  # fmt: skip
    client.alias(previous_id="ph-visitor-1", distinct_id="customer-42")
    client.flush()
    client.shutdown()
    reset_sessions()  # close the SDK's pooled keep-alive connection before the live server stops
    # The site's distinct ids live under its key: they can never name a Weituan visitor or user.
    visitor = f"k{api_key_resolve(site_key)}:ph-visitor-1"
    rows = analytics_store().query(
        "SELECT event_id, event, visitor_id, url, channel, source, deal_id, revenue, origin"
        " FROM events WHERE visitor_id = {v:String} ORDER BY ts",
        {"v": visitor},
    )
    assert [row["event"] for row in rows] == ["deal_view", "order_paid", "$create_alias"]
    view, paid = rows[0], rows[1]
    assert view["event_id"] == sent_id
    assert (view["url"], view["channel"], view["source"], view["deal_id"]) == (
        "https://shop.example/deal/9", "social", "weibo.com", 9,
    )  # fmt: skip
    assert (paid["revenue"], paid["origin"]) == (2500, "posthog")
    assert person_of(visitor_id=visitor) == f"k{api_key_resolve(site_key)}:customer-42"


def capture(path: str, body: bytes, *, content_type: str = "application/json", **extra):
    return Client().post(path, data=body, content_type=content_type, **extra)


def event(name: str, distinct_id: str, **props):
    return {"event": name, "distinct_id": distinct_id, "properties": props,
            "timestamp": datetime.now(UTC).isoformat(), "uuid": str(uuid.uuid4())}  # fmt: skip


def test_payload_shapes_and_compressions(site_key):
    single = {"api_key": site_key, **event("$pageview", "d1", **{"$current_url": "https://s.example/"})}
    assert capture("/capture/", json.dumps(single).encode()).json()["status"] == 1
    batch = {"api_key": site_key, "batch": [event("a", "d2"), event("b", "d2")]}
    assert (
        capture(
            "/batch/", gzip.compress(json.dumps(batch).encode()), HTTP_CONTENT_ENCODING="gzip"
        ).status_code
        == 200
    )
    # posthog-js: gzip named in the query string, token inside each event's properties.
    js_events = [event("c", "d3", token=site_key)]
    assert (
        capture("/e/?compression=gzip-js", gzip.compress(json.dumps(js_events).encode())).status_code == 200
    )
    resent = capture("/i/v0/e/?compression=gzip-js", gzip.compress(json.dumps(js_events).encode())).json()
    assert (resent["accepted"], resent["duplicates"]) == (0, 1)  # same uuid: stored once
    # Older clients: base64 JSON in a form field `data`.
    form = "data=" + base64.b64encode(json.dumps({"token": site_key, **event("d", "d4")}).encode()).decode()
    assert capture("/e", form.encode(), content_type="application/x-www-form-urlencoded").status_code == 200
    assert count("SELECT count() FROM events WHERE origin = 'posthog'") == 5
    assert count("SELECT count() FROM events WHERE event = 'pageview' AND url = 'https://s.example/'") == 1


def test_identify_merges_the_anonymous_id_into_the_person(site_key):
    body = {"api_key": site_key, **event("$identify", "user-7", **{"$anon_distinct_id": "anon-7"})}
    assert capture("/capture/", json.dumps(body).encode()).status_code == 200
    key_id = api_key_resolve(site_key)
    assert person_of(visitor_id=f"k{key_id}:anon-7") == f"k{key_id}:user-7"


def test_bad_keys_and_bad_bodies_get_posthog_style_errors(site_key):
    wrong = capture("/batch/", json.dumps({"api_key": "phc_nope", "batch": [event("a", "x")]}).encode())
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_api_key"
    missing = capture("/batch/", json.dumps({"batch": [event("a", "x")]}).encode())
    assert missing.status_code == 401 and missing.json()["code"] == "missing_api_key"
    broken = capture("/batch/?compression=gzip-js", b"\x1f\x8bnot gzip", HTTP_CONTENT_ENCODING="gzip")
    assert broken.status_code == 422 and broken.json()["code"] == "bad_compression"
    partial = capture(
        "/batch/", json.dumps({"api_key": site_key, "batch": [event("a", "x"), {"event": "b"}]}).encode()
    )
    assert partial.json()["accepted"] == 1
    assert partial.json()["rejected"] == [
        {"index": 1, "code": "missing_visitor_id", "reason": "visitor_id is required"}
    ]
    assert count("SELECT count() FROM events") == 1


def test_each_event_is_stored_under_its_own_token_and_an_unknown_one_refuses_only_that_event(site_key):
    other_key = api_key_issue(name="另一家店").key
    # posthog-js: the token in each event's properties; the first one here is unknown.
    js_events = [event("a", "d1", token="phc_unknown"), event("b", "d2", token=site_key),
                 event("c", "d3", token=other_key), event("d", "d4")]  # fmt: skip
    answer = capture("/e/?compression=gzip-js", gzip.compress(json.dumps(js_events).encode()))
    assert answer.status_code == 200
    assert answer.json() == {
        "status": 1, "accepted": 2, "duplicates": 0,
        "rejected": [
            {"index": 0, "code": "invalid_api_key", "reason": "The API key is not valid"},
            {"index": 3, "code": "missing_api_key", "reason": "The API key (api_key or token) is missing"},
        ],
    }  # fmt: skip
    # A batch sent with one key: an event naming an unknown key of its own is not stored under it.
    batch = {"api_key": other_key, "batch": [event("e", "d5", token="phc_unknown"), event("f", "d6")]}
    answer = capture("/batch/", json.dumps(batch).encode())
    assert answer.json()["accepted"] == 1
    assert answer.json()["rejected"] == [
        {"index": 0, "code": "invalid_api_key", "reason": "The API key is not valid"}
    ]
    stored = analytics_store().query("SELECT event, api_key_id FROM events ORDER BY event")
    assert stored == [
        {"event": "b", "api_key_id": api_key_resolve(site_key)},
        {"event": "c", "api_key_id": api_key_resolve(other_key)},
        {"event": "f", "api_key_id": api_key_resolve(other_key)},
    ]
    # No event with a valid key: the request as a whole is refused, as before.
    unknown_only = [event("g", "d7", token="phc_unknown"), event("h", "d8")]
    refused = capture("/e/", json.dumps(unknown_only).encode())
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key"
    assert count("SELECT count() FROM events") == 3


# lz-string's JavaScript `compressToBase64`, run on these texts (lz-string 1.5.0).
LZ_STRING_VECTORS = [
    ("hello world hello world", "BYUwNmD2AEDukCcwBNqgjeTlA==="),
    ('[{"event":"微团","n":"😀"}]', "NobwRApgbhB2AuYBcZB1+oI7UwBoy2WQXg3AAPbAF8BdIA=="),
    ("abababababababababab", "IYI17SIo"),
    ("", "Q==="),
]


def test_lz_string_base64_reads_what_the_javascript_library_writes():
    for text, compressed in LZ_STRING_VECTORS:
        assert lz_string_compress_base64(text) == compressed  # the test's compressor is the same
        assert lz_string_decode_base64(compressed, limit=1000) == text
    long_text = json.dumps([event(f"e{i % 7}", f"v{i % 31}", n=i, 名="微团" * (i % 5)) for i in range(400)])
    assert lz_string_decode_base64(lz_string_compress_base64(long_text), limit=len(long_text)) == long_text


def test_posthog_js_lz64_bodies_are_accepted(site_key):
    # The key, uuids and times are random, so the compressed text varies; a padding property is
    # lengthened until the text holds `+` or `/`, the characters a form body must carry percent-encoded.
    for pad in range(64):
        js_events = [event("$pageview", "d9", token=site_key, pad="p" * pad,
                           **{"$current_url": "https://s.example/团购?x=1+2"}),
                     event("deal_view", "d9", token=site_key, deal_id=5)]  # fmt: skip
        data = lz_string_compress_base64(json.dumps(js_events))
        if "+" in data or "/" in data:
            break
    assert "+" in data or "/" in data
    # posthog-js: the compression in the query string and in the form, `data` percent-encoded.
    sent = capture("/e/?compression=lz64&ver=1.0", f"data={quote(data, safe='')}&compression=lz64".encode(),
                   content_type="application/x-www-form-urlencoded")  # fmt: skip
    assert (sent.status_code, sent.json()["accepted"]) == (200, 2)
    # A client that left `+` unencoded (it arrives as a space) and named lz64 in the form only.
    single = {"event": "signup", "distinct_id": "shopper-10", "properties": {"plan": "团长"}}
    data = lz_string_compress_base64(json.dumps(single, ensure_ascii=False))
    assert "+" in data
    form = f"compression=lz64&data={data}"
    sent = capture(
        f"/capture/?token={site_key}", form.encode(), content_type="application/x-www-form-urlencoded"
    )
    assert (sent.status_code, sent.json()["accepted"]) == (200, 1)
    stored = analytics_store().query("SELECT event, url, deal_id, props FROM events ORDER BY event")
    assert [(row["event"], row["url"], row["deal_id"]) for row in stored] == [
        ("deal_view", "", 5), ("pageview", "https://s.example/团购?x=1+2", 0), ("signup", "", 0),
    ]  # fmt: skip
    assert json.loads(stored[2]["props"]) == {"plan": "团长"}
    broken = capture(
        "/e/?compression=lz64", b"data=%21%21%21%21", content_type="application/x-www-form-urlencoded"
    )
    assert broken.status_code == 422 and broken.json()["code"] == "bad_compression"


def test_a_future_timestamp_is_refused_alone_and_a_fast_client_clock_is_corrected(site_key):
    ahead = datetime.now(UTC) + timedelta(days=2)
    late = {**event("late", "d5"), "timestamp": ahead.isoformat()}
    body = {"api_key": site_key, "batch": [event("a", "d5"), late, event("b", "d5")]}
    answer = capture("/batch/", json.dumps(body).encode())
    assert answer.status_code == 200
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (
        2,
        [{"index": 1, "code": "ts_in_future", "reason": "ts is more than an hour in the future"}],
    )
    assert [row["event"] for row in analytics_store().query("SELECT event FROM events ORDER BY event")] == [
        "a",
        "b",
    ]
    # The same time sent by a client whose clock runs two days fast (its sent_at says so) is moved back
    # by that gap, as PostHog does, and kept.
    skewed = {"api_key": site_key, "sent_at": ahead.isoformat(), "batch": [{**late, "event": "skewed"}]}
    assert capture("/batch/", json.dumps(skewed).encode()).json()["accepted"] == 1
    stored = analytics_store().scalar("SELECT ts FROM events WHERE event = 'skewed'")
    assert abs(datetime.fromisoformat(stored) - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_batch_over_the_limit_is_refused_whole_with_a_code(site_key):
    over = [event("bulk", f"d{i}") for i in range(MAX_BATCH + 1)]
    for path, payload in (
        ("/batch/", json.dumps({"api_key": site_key, "batch": over}).encode()),
        (
            "/e/?compression=gzip-js",
            gzip.compress(json.dumps([{**e, "api_key": site_key} for e in over]).encode()),
        ),
    ):
        refused = capture(path, payload)
        assert refused.status_code == 413
        assert refused.json()["code"] == "batch_too_large"
        assert refused.json()["detail"] == f"A batch holds at most {MAX_BATCH} events"
    assert count("SELECT count() FROM events") == 0
    # A batch within the limit from the same client goes through.
    within = {"api_key": site_key, "batch": over[:MAX_BATCH]}
    assert capture("/batch/", json.dumps(within).encode()).json()["accepted"] == MAX_BATCH
    assert count("SELECT count() FROM events WHERE event = 'bulk'") == MAX_BATCH


def test_decide_answers_without_flags(db):
    body = Client().post("/decide/?v=3", data="{}", content_type="application/json").json()
    assert body["featureFlags"] == {} and body["errorsWhileComputingFlags"] is False
