"""The ClickHouse-over-HTTP store (CLICKHOUSE_URL), run end to end against a real HTTP endpoint.

The endpoint (clickhouse_http_server.py) speaks ClickHouse's HTTP interface on 127.0.0.1 and executes
the SQL with chDB in its own process, so the migrations, inserts and reads travel over HTTP exactly
as they would to a ClickHouse server.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import override_settings

import weituan.tracking.store as store_module
from weituan.tracking import facade
from weituan.tracking.links_cache import link_resolve
from weituan.tracking.queries import link_click_counts, person_of
from weituan.tracking.services.events import click_add, events_ingest
from weituan.tracking.services.ingest import ingest_memory_clear
from weituan.tracking.store import StoreError
from weituan.tracking.store.http_store import HttpStore
from weituan.tracking.store.schema import schema_files, schema_migrate

SERVER = Path(__file__).with_name("clickhouse_http_server.py")
USER, PASSWORD = "weituan", "s3cret:pass"
DAY = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
SITE = "https://weituan.example"
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a ClickHouse HTTP endpoint backed by chDB in a separate process."""
    folder = tmp_path_factory.mktemp("clickhouse-http")
    port_file = folder / "port"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), str(folder / "chdb"), str(port_file), USER, PASSWORD],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text()):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
            assert time.monotonic() < deadline, "the ClickHouse HTTP endpoint did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def http_store(endpoint: str, request: pytest.FixtureRequest) -> Iterator[HttpStore]:
    """The process's analytics store replaced by an HttpStore on a fresh database of the endpoint."""
    database = f"weituan_{os.getpid()}_{request.node.name[-20:].strip('_')}"
    url = f"http://{USER}:{PASSWORD.replace(':', '%3A')}@{endpoint.removeprefix('http://')}/?database={database}"
    with override_settings(CLICKHOUSE_URL=url):
        store = store_module._open()
    assert isinstance(store, HttpStore)
    previous = store_module._store
    store_module._store = store
    ingest_memory_clear()
    try:
        assert schema_migrate(store) == [1, 2]
        yield store
    finally:
        from weituan.tracking.buffer import write_buffer

        write_buffer().flush()  # clicks of the test go to the HTTP store, not to the next test's
        store_module._store = previous
        store.close()


def test_migrations_run_over_http_once(http_store: HttpStore) -> None:
    versions = [
        int(row["version"]) for row in http_store.query("SELECT version FROM schema_migrations ORDER BY 1")
    ]
    assert versions == [version for version, _, _ in schema_files()] == [1, 2]
    assert schema_migrate(http_store) == []
    tables = {
        row["name"]
        for row in http_store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    assert {
        "events",
        "first_touch",
        "identities",
        "first_touch_mv",
        "identities_mv",
        "schema_migrations",
    } <= tables


def test_ingestion_is_idempotent_and_partly_rejected_over_http(http_store: HttpStore, db: Any) -> None:
    events = [
        {"event": "pageview", "ts": DAY.isoformat(), "visitor_id": "http-v1", "event_id": "e-1",
         "url": SITE + "/d/1", "referrer": "https://weibo.com/u/2"},
        {"event": "order_paid", "ts": DAY.isoformat(), "visitor_id": "http-v1", "event_id": "e-2",
         "props": {"order_id": 77, "revenue": 1990, "currency": "cny"}},
        {"event": "pageview", "ts": (DAY + timedelta(days=1)).isoformat(), "visitor_id": "http-v1", "url": SITE + "/"},
        {"event": "pageview", "ts": "tomorrow", "visitor_id": "http-v1"},
    ]  # fmt: skip
    first = events_ingest(events=events, origin="api", now=DAY + timedelta(days=2))
    assert (first.accepted, first.duplicates, [(r.index, r.code) for r in first.rejected]) == (
        3,
        0,
        [(3, "bad_ts")],
    )
    again = events_ingest(events=events[:2], origin="api", now=DAY + timedelta(days=2))
    assert (again.accepted, again.duplicates) == (0, 2)
    rows = http_store.query(
        "SELECT event, order_id, revenue, currency, channel, source FROM events"
        " WHERE visitor_id = {v:String} ORDER BY ts, event",
        {"v": "http-v1"},
    )
    assert rows == [
        {
            "event": "order_paid",
            "order_id": "77",
            "revenue": 1990,
            "currency": "CNY",
            "channel": "",
            "source": "",
        },
        {
            "event": "pageview",
            "order_id": "",
            "revenue": 0,
            "currency": "",
            "channel": "social",
            "source": "weibo.com",
        },
        {
            "event": "pageview",
            "order_id": "",
            "revenue": 0,
            "currency": "",
            "channel": "direct",
            "source": "(direct)",
        },
    ]
    first_touch = facade.first_touch_of(visitor_id="http-v1")
    assert first_touch is not None
    assert (first_touch.channel, first_touch.source, first_touch.ts) == ("social", "weibo.com", DAY)
    sessions = facade.sessions_between(DAY, DAY + timedelta(days=2), person_id="http-v1")
    assert [(s.number, s.channel, s.events, s.revenue) for s in sessions] == [
        (1, "social", 2, 1990),
        (2, "direct", 1, 0),
    ]


def test_clicks_through_the_write_buffer_reach_the_http_store(
    http_store: HttpStore, db: Any, shopper: Any
) -> None:
    link = facade.short_link_for_share(sharer_id=5, post_id=9, target_url=SITE + "/d/9", hop_depth=1)
    resolved = link_resolve(link.code)
    assert resolved is not None
    for visitor, user_id, method in (("clicker0001", shopper.pk, "GET"), ("clicker0001", shopper.pk, "GET"),
                                     ("clicker0002", None, "HEAD")):  # fmt: skip
        click_add(link=resolved, visitor_id=visitor, user_id=user_id, referrer="https://t.co/x",
                  user_agent=BROWSER, ip="198.51.100.23", method=method)  # fmt: skip
    from weituan.tracking.buffer import write_buffer

    write_buffer().flush()
    assert link_click_counts(link.id) == {"counted": 1, "duplicate": 1, "head": 1}
    assert person_of(visitor_id="clicker0001") == f"u:{shopper.pk}"
    stored = http_store.query(
        "SELECT channel, medium, hop_depth, sharer_id, device, ip FROM events WHERE is_bot = 0 AND link_id = {l:UInt64}",
        {"l": link.id},
    )
    assert stored == [{"channel": "microblog", "medium": "repost", "hop_depth": 1, "sharer_id": 5,
                       "device": "mobile", "ip": "198.51.100.0"}]  # fmt: skip


def test_errors_come_back_as_store_errors_with_the_clickhouse_message(http_store: HttpStore) -> None:
    with pytest.raises(StoreError, match="UNKNOWN_TABLE"):
        http_store.query("SELECT * FROM no_such_table")
    with pytest.raises(StoreError, match="SYNTAX_ERROR"):
        http_store.execute("SELEKT 1")
    assert http_store.scalar("SELECT count() FROM events") == 0  # nothing half-done


def test_wrong_credentials_and_an_unreachable_server_are_refused(endpoint: str) -> None:
    with pytest.raises(StoreError, match="AUTHENTICATION_FAILED"):
        HttpStore(f"http://{USER}:wrong@{endpoint.removeprefix('http://')}/?database=weituan_denied")
    with httpx.Client() as probe:  # the endpoint's own error headers, as a ClickHouse server sends them
        answer = probe.post(endpoint, content=b"SELECT 1", auth=(USER, "wrong"))
    assert (answer.status_code, answer.headers["X-ClickHouse-Exception-Code"]) == (401, "516")
    with pytest.raises(StoreError, match="unreachable"):
        HttpStore("http://127.0.0.1:9/?database=weituan", timeout=2)
