"""The analytics store's versioned schema, the write buffer's no-loss rules, and the /collect beacon."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from weituan.tracking.buffer import WriteBuffer
from weituan.tracking.rows import event_row
from weituan.tracking.services.ingest import events_store
from weituan.tracking.static_js import COLLECT_JS
from weituan.tracking.store import analytics_store
from weituan.tracking.store.schema import schema_files, schema_migrate
from weituan.tracking.tests.conftest import count

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_every_migration_is_recorded_once_and_rerunning_applies_nothing():
    store = analytics_store()
    versions = [
        int(row["version"]) for row in store.query("SELECT version FROM schema_migrations ORDER BY version")
    ]
    assert versions == [version for version, _, _ in schema_files()] == [1, 2]
    assert schema_migrate(store) == []
    assert count("SELECT count() FROM schema_migrations") == 2


def test_events_are_partitioned_by_month_and_sorted_per_visitor():
    """Per-visitor scans (sessions, touch paths) read one sorted range; old months drop as partitions.

    The forever-kept tables (first touch, identities) are read by their one key and never expire.
    """
    tables = analytics_store().query(
        "SELECT name, engine, partition_key, sorting_key FROM system.tables"
        " WHERE database = currentDatabase() AND engine LIKE '%MergeTree' ORDER BY name"
    )
    assert tables == [
        {"name": "events", "engine": "ReplacingMergeTree", "partition_key": "toYYYYMM(ts)",
         "sorting_key": "visitor_id, ts, event_id"},
        {"name": "first_touch", "engine": "ReplacingMergeTree", "partition_key": "", "sorting_key": "visitor_id"},
        {"name": "identities", "engine": "ReplacingMergeTree", "partition_key": "", "sorting_key": "alias_id"},
        {"name": "schema_migrations", "engine": "MergeTree", "partition_key": "", "sorting_key": "version"},
    ]  # fmt: skip


def test_odd_text_survives_the_round_trip():
    text = "tab\there\nnew line \\ back slash 'quote' 微团 \r"
    events_store([event_row("pageview", NOW, "v-odd", url=text, props='{"a": "\\t"}')])
    row = analytics_store().query("SELECT url, props, ts FROM events WHERE visitor_id = 'v-odd'")[0]
    assert row == {"url": text, "props": '{"a": "\\t"}', "ts": "2026-05-01T12:00:00.000Z"}


class FlakyStore:
    """A sink that refuses the first `failures` batches, like a store that is briefly down."""

    def __init__(self, failures: int):
        self.failures = failures
        self.rows: list[dict] = []

    def __call__(self, rows: list[dict]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unavailable")
        self.rows.extend(rows)


def test_a_failed_flush_keeps_every_row_in_order_for_the_next_one():
    sink = FlakyStore(failures=2)
    buffer = WriteBuffer(sink, max_rows=100, interval=60, spill_dir=None, background=False)
    buffer.add_many([{"n": i} for i in range(250)])
    for _ in range(2):
        with pytest.raises(ConnectionError):
            buffer.flush()
    assert buffer.stats().pending == 250
    assert buffer.flush() == 250
    assert [row["n"] for row in sink.rows] == list(range(250))
    stats = buffer.stats()
    assert (stats.accepted, stats.stored, stats.pending, stats.failed_flushes) == (250, 250, 0, 2)


def test_rows_the_store_refuses_at_exit_are_spilled_and_replayed(tmp_path):
    down = WriteBuffer(FlakyStore(failures=10), interval=60, spill_dir=tmp_path, background=False)
    down.add_many([event_row("pageview", NOW, f"v{i}") for i in range(3)])
    down.stop()
    assert down.stats().spilled == 3 and len(list(tmp_path.glob("spill-*.jsonl"))) == 1
    sink = FlakyStore(failures=0)
    back = WriteBuffer(sink, interval=60, spill_dir=tmp_path, background=False)
    back.add(event_row("pageview", NOW, "v-new"))
    back.stop()
    assert sorted(row["visitor_id"] for row in sink.rows) == ["v-new", "v0", "v1", "v2"]
    assert all(row["ts"] == NOW for row in sink.rows)
    assert list(tmp_path.glob("spill-*.jsonl")) == []


def test_the_beacon_records_a_page_view_and_its_channel(db):
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605.1.15")
    response = client.post("/collect", data='{"url": "http://127.0.0.1:8000/d/1", "referrer": "https://www.douban.com/"}',
                           content_type="text/plain")  # fmt: skip
    assert response.status_code == 204
    visitor = response.cookies["wt_vid"].value
    from weituan.tracking.buffer import write_buffer

    write_buffer().flush()
    rows = analytics_store().query("SELECT event, visitor_id, channel, device, origin FROM events")
    assert rows == [{"event": "pageview", "visitor_id": visitor, "channel": "social", "device": "desktop",
                     "origin": "beacon"}]  # fmt: skip


def test_do_not_track_and_gpc_record_nothing(db):
    for header in ({"DNT": "1"}, {"Sec-GPC": "1"}):
        response = Client().post(
            "/collect", data='{"url": "http://127.0.0.1:8000/"}', content_type="text/plain", headers=header
        )
        assert response.status_code == 204
        assert "wt_vid" not in response.cookies
    from weituan.tracking.buffer import write_buffer

    write_buffer().flush()
    assert count("SELECT count() FROM events") == 0


def test_the_beacon_script_is_served_as_cacheable_javascript(db):
    # What it does in a browser (and that it sends nothing under Do-Not-Track) is in test_beacon_browser.
    response = Client().get("/collect.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript; charset=utf-8"
    assert response["Cache-Control"] == "public, max-age=86400"
    assert response.content.decode() == COLLECT_JS
