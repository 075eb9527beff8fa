"""POST /api/v1/events: partial batches, idempotency on event_id, and the clear errors."""

import gzip
import json
import threading
from datetime import UTC, datetime, timedelta

from django.test import Client

from weituan.tracking.models import ApiKey
from weituan.tracking.tests.conftest import count

NOW = datetime.now(UTC).replace(microsecond=0)


def post(events, *, key: str, **extra):
    return Client().post(
        "/api/v1/events",
        data=json.dumps(events),
        content_type="application/json",
        HTTP_X_API_KEY=key,
        **extra,
    )


def good(i: int, **over):
    event = {
        "event": "order_paid", "ts": (NOW - timedelta(minutes=i)).isoformat(), "visitor_id": f"shop-v{i}",
        "event_id": f"shop-evt-{i}", "url": "https://shop.example/checkout/done",
        "referrer": "https://www.baidu.com/s?wd=x", "props": {"order_id": f"SO-{i}", "revenue": 1999, "currency": "cny"},
    }  # fmt: skip
    event.update(over)
    return event


def test_a_batch_with_bad_events_stores_the_good_ones_and_lists_the_rest(site_key):
    batch = [
        good(0),
        {"event": "pageview", "visitor_id": "v"},  # no ts: the time of receipt
        {"event": "", "ts": NOW.isoformat(), "visitor_id": "v"},
        {"event": "x", "ts": (NOW + timedelta(days=2)).isoformat(), "visitor_id": "v"},
        {"event": "x", "ts": "yesterday", "visitor_id": "v"},
        {"event": "x", "ts": NOW.isoformat()},
        "not an object",
        good(7, props={"revenue": "19.99"}),
        good(8, props={"currency": "RENMINBI"}),
        good(9, user_id=-3),
        good(10, props={"blob": "x" * 40_000}),
        good(11),
    ]
    response = post({"events": batch}, key=site_key)
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": [
            {"index": 2, "code": "bad_event", "reason": "event must be a name of 1–200 characters"},
            {"index": 3, "code": "ts_in_future", "reason": "ts is more than an hour in the future"},
            {"index": 4, "code": "bad_ts", "reason": "ts 'yesterday' is not ISO 8601"},
            {"index": 5, "code": "missing_visitor_id", "reason": "visitor_id is required"},
            {"index": 6, "code": "not_an_object", "reason": "each event must be a JSON object"},
            {"index": 7, "code": "bad_revenue", "reason": "props.revenue must be an integer amount in minor units"},
            {"index": 8, "code": "bad_currency", "reason": "props.currency must be a three-letter ISO 4217 code"},
            {"index": 9, "code": "bad_user_id", "reason": "user_id must be a non-negative integer"},
            {"index": 10, "code": "props_too_large", "reason": "props is larger than 32768 bytes"},
        ],
    }  # fmt: skip
    assert count("SELECT count() FROM events WHERE origin = 'api'") == 3
    key_id = ApiKey.objects.get().pk
    from weituan.tracking.store import analytics_store

    paid = analytics_store().query(
        "SELECT order_id, revenue, currency, channel, source, api_key_id FROM events WHERE event_id = 'shop-evt-0'"
    )
    assert paid == [{"order_id": "SO-0", "revenue": 1999, "currency": "CNY", "channel": "search",
                     "source": "baidu.com", "api_key_id": key_id}]  # fmt: skip


def test_resending_an_event_id_does_not_store_it_twice(site_key):
    first = post([good(1), good(2)], key=site_key).json()
    again = post([good(1), good(2), good(3), good(3)], key=site_key).json()
    assert (first["accepted"], first["duplicates"]) == (2, 0)
    assert (again["accepted"], again["duplicates"]) == (1, 3)
    assert count("SELECT count() FROM events") == 3


def test_unknown_or_missing_key_is_refused_and_nothing_is_stored(db, site_key):
    wrong = post([good(1)], key="wtk_not-a-key")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "unknown_api_key"
    missing = Client().post("/api/v1/events", data=json.dumps([good(1)]), content_type="application/json")
    assert missing.status_code == 401 and missing.json()["code"] == "missing_api_key"
    ApiKey.objects.update(revoked_at=NOW)
    from django.core.cache import cache

    cache.clear()
    assert post([good(1)], key=site_key).status_code == 401
    assert count("SELECT count() FROM events") == 0


def test_oversized_batch_is_413_with_a_code(site_key):
    batch = [{"event": "e", "visitor_id": "v"}] * 10_001
    response = post(batch, key=site_key)
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert count("SELECT count() FROM events") == 0


def test_a_full_batch_of_ten_thousand_is_accepted(site_key):
    batch = [{"event": "pageview", "visitor_id": f"v{i % 97}", "ts": NOW.isoformat()} for i in range(10_000)]
    body = gzip.compress(json.dumps({"events": batch}).encode())
    response = Client().post(
        "/api/v1/events", data=body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip",
        HTTP_X_API_KEY=site_key,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json()["accepted"] == 10_000
    assert count("SELECT count() FROM events") == 10_000


def test_body_that_is_not_json_is_a_clear_error(site_key):
    response = Client().post("/api/v1/events", data="{nope", content_type="application/json",
                             HTTP_X_API_KEY=site_key)  # fmt: skip
    assert response.status_code == 422
    assert response.json()["code"] == "bad_json"


def test_merchant_issues_a_key_outsider_cannot(api_as, merchant, outsider):
    created = api_as(merchant).post(
        "/api/v1/tracking/keys", data={"name": "官网"}, content_type="application/json"
    )
    assert created.status_code == 201
    assert created.json()["key"].startswith("wtk_")
    refused = api_as(outsider).post(
        "/api/v1/tracking/keys", data={"name": "x"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert ApiKey.objects.count() == 1
    assert post([good(1)], key=created.json()["key"]).json()["accepted"] == 1


def test_batches_arriving_together_are_stored_in_one_go_each_event_once(monkeypatch):
    from weituan.tracking.services import ingest
    from weituan.tracking.services.events import events_ingest

    real_store_group = ingest._store_group
    group_sizes: list[int] = []

    def store_group_held(group):
        group_sizes.append(len(group))
        if len(group_sizes) == 1:
            # The first batch is being stored while two more arrive: they must wait and go in together.
            for _ in range(2000):
                if len(ingest._group_commit._waiting) == 2:
                    break
                threading.Event().wait(0.01)
        real_store_group(group)

    monkeypatch.setattr(ingest, "_store_group", store_group_held)
    results = {}

    def send(name: str, ids: range) -> None:
        events = [
            {"event": "signup", "ts": NOW.isoformat(), "visitor_id": f"g{i}", "event_id": f"grp-{i}"}
            for i in ids
        ]
        results[name] = events_ingest(events=events, origin="api")

    first = threading.Thread(target=send, args=("first", range(10)))
    first.start()
    while not group_sizes:
        threading.Event().wait(0.01)
    later = [
        threading.Thread(target=send, args=args) for args in (("overlap", range(5, 15)), ("repeat", range(5)))
    ]
    for thread in later:
        thread.start()
    for thread in [first, *later]:
        thread.join(60)
    assert group_sizes == [1, 2]
    assert {name: (r.accepted, r.duplicates) for name, r in results.items()} == {
        "first": (10, 0),
        "overlap": (5, 5),
        "repeat": (0, 5),
    }
    assert count("SELECT count() FROM events WHERE startsWith(event_id, 'grp-')") == 15
    assert count("SELECT uniqExact(event_id) FROM events WHERE startsWith(event_id, 'grp-')") == 15


# Stores the same event ids as its siblings, round after round, starting when the go file appears.
SAME_IDS_WRITER = """
import os, sys, time
from pathlib import Path
import django
django.setup()
from datetime import UTC, datetime
from weituan.tracking.rows import event_row
from weituan.tracking.services.ingest import events_store
from weituan.tracking.store import analytics_store
go, rounds = Path(sys.argv[1]), int(sys.argv[2])
analytics_store()  # reached (started by the first) and migrated before the start
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():
    time.sleep(0.01)
at = datetime(2026, 11, 11, tzinfo=UTC)
stored = 0
for r in range(rounds):
    rows = [event_row("pageview", at, f"v{n}", event_id=f"same-{r}-{n}") for n in range(100)]
    stored += events_store(rows, check_existing=True).stored
print(stored)
"""


def test_processes_storing_the_same_event_ids_at_once_store_each_once(tmp_path):
    """Each process looks the ids up and inserts the absent ones; the lock makes the pair one step."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    from weituan.tracking.store.chdb_process import ChdbProcessStore

    ours = ("WEITUAN_", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[3]),
        DJANGO_SETTINGS_MODULE="weituan.settings",
        WEITUAN_PROFILE="test",
        WEITUAN_DATA_DIR=str(tmp_path),
        WEITUAN_CHDB_PROCESS="1",  # every writer reaches the one shared store process
        WEITUAN_REDIS_PREFIX=f"wt-ids-{os.getpid()}:",
    )
    if settings.REDIS_URL:  # the PostgreSQL + Redis run takes the Redis lock, the other the file lock
        env["REDIS_URL"] = settings.REDIS_URL
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", SAME_IDS_WRITER, str(go), "15"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    import time

    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < len(writers) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    stored = 0
    for writer in writers:
        out, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err
        stored += int(out)
    assert stored == 15 * 100  # what the writers were told they stored, together
    store = ChdbProcessStore(tmp_path / "chdb")
    try:
        assert store.scalar("SELECT count() FROM events") == 15 * 100
        assert store.scalar("SELECT uniqExact(event_id) FROM events") == 15 * 100
    finally:
        store.close()


def test_an_event_landing_with_only_a_google_click_id_reads_as_paid_search(site_key):
    # A shop's "signup" event sent from the page an ad led to: no referrer, no utm_*, only the click id.
    landed = good(20, event="signup", referrer="", url="https://shop.example/?gclid=Cj0KCQ", props={})
    inside = good(21, event="signup", referrer="", url="https://shop.example/account", props={})
    assert post([landed, inside], key=site_key).json()["accepted"] == 2
    from weituan.tracking.store import analytics_store

    rows = analytics_store().query(
        "SELECT event_id, channel, source, medium FROM events WHERE origin = 'api' ORDER BY event_id"
    )
    assert [(row["event_id"], row["channel"], row["source"], row["medium"]) for row in rows] == [
        ("shop-evt-20", "paid", "google", "cpc"),
        ("shop-evt-21", "", "", ""),
    ]


def test_a_superscript_digit_where_a_number_goes_is_refused_or_ignored_not_a_crash(site_key):
    # "²" is a digit to str.isdigit() but not a number int() reads.
    response = post(
        [good(1, user_id="²"), good(2, user_id="7", props={"deal_id": "²", "post_id": "³5"})], key=site_key
    )
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [{"index": 0, "code": "bad_user_id", "reason": "user_id must be a non-negative integer"}],
    }
    from weituan.tracking.store import analytics_store

    stored = analytics_store().query("SELECT event_id, user_id, deal_id, post_id FROM events")
    assert stored == [{"event_id": "shop-evt-2", "user_id": 7, "deal_id": 0, "post_id": 0}]
