"""The outbox: business events are stored if and only if their transaction commits, exactly once."""

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import transaction

from weituan.tracking import facade
from weituan.tracking.models import OutboxEvent, ShortLink
from weituan.tracking.tests.conftest import count

SCRIPT = Path(__file__).with_name("outbox_crash_script.py")

STORES = ["sqlite"] + (["postgres"] if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else [])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database of its own for the killed processes, which commit for real (not the test database)."""
    admin = settings.DATABASES["default"]
    name = f"weituan_outbox_{uuid.uuid4().hex[:10]}"
    server = f"postgres://{admin['USER']}@{admin['HOST'] or '127.0.0.1'}:{admin['PORT'] or 5432}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=STORES)
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of the killed processes: SQLite under their data dir, or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"DATABASE_URL": request.getfixturevalue("postgres_url"), "WEITUAN_DB_POOL": "0"}


def _env(data_dir: Path, store: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL")}
    env.update(
        WEITUAN_DATA_DIR=str(data_dir),
        WEITUAN_PROFILE="test",
        WEITUAN_TASK_BACKEND="django.tasks.backends.dummy.DummyBackend",  # no worker: nothing moves by itself
        WEITUAN_LOG_LEVEL="WARNING",
        **store,
    )
    return env


def test_committed_event_is_moved_to_the_store_after_commit(db, run_on_commit):
    with run_on_commit(), transaction.atomic():
        ShortLink.objects.create(
            code="Biz00001", target_url="https://x.example/", channel="push", dedup_key="b1"
        )
        event_id = facade.event_emit(event="order_placed", user_id=3, order_id=55, revenue=4900, currency="cny",
                                     deal_id=8)  # fmt: skip
        assert count("SELECT count() FROM events") == 0  # nothing leaves before commit
    from weituan.tracking.store import analytics_store

    rows = analytics_store().query(
        "SELECT event, user_id, order_id, revenue, currency, deal_id, origin FROM events"
    )
    assert rows == [{"event": "order_placed", "user_id": 3, "order_id": "55", "revenue": 4900, "currency": "CNY",
                     "deal_id": 8, "origin": "server"}]  # fmt: skip
    assert OutboxEvent.objects.get(event_id=event_id).moved_at is not None


def test_the_row_is_written_as_the_orm_writes_it(db, django_assert_num_queries):
    from datetime import UTC, datetime

    from weituan.tracking.services.outbox import outbox_event_write

    ts = datetime(2026, 11, 11, 0, 0, 1, 250_000, tzinfo=UTC)
    payload = {"order_id": "55", "note": "双十一 100% off", "nested": {"hop": [1, 2]}, "none": None}
    with transaction.atomic(), django_assert_num_queries(1):
        written = outbox_event_write(event="order_placed", user_id=7, ts=ts, payload=payload)
    row = OutboxEvent.objects.get(event_id=written)
    assert (row.event, row.ts, row.visitor_id, row.user_id, row.payload, row.moved_at) == (
        "order_placed", ts, "u:7", 7, payload, None,
    )  # fmt: skip
    assert row.created_at is not None and abs((row.created_at - datetime.now(UTC)).total_seconds()) < 60
    # Without a user: no visitor unless one is given; an empty payload is an empty object.
    anonymous = OutboxEvent.objects.get(event_id=outbox_event_write(event="page_view", user_id=None))
    assert (anonymous.visitor_id, anonymous.user_id, anonymous.payload) == ("", None, {})
    given = OutboxEvent.objects.get(event_id=outbox_event_write(event="x", user_id=None, visitor_id="v-1",
                                                                event_id="fixed-id"))  # fmt: skip
    assert (given.event_id, given.visitor_id) == ("fixed-id", "v-1")


def test_rolled_back_event_never_reaches_the_store(db, run_on_commit):
    with pytest.raises(RuntimeError), run_on_commit(), transaction.atomic():
        facade.event_emit(event="order_placed", user_id=3)
        raise RuntimeError("payment declined")
    assert OutboxEvent.objects.count() == 0
    facade.events_flush()
    assert count("SELECT count() FROM events") == 0


def _child(
    mode: str,
    event_id: str,
    data_dir: Path,
    *,
    wait_for: str | None = None,
    extra: tuple[str, ...] = (),
    kill_after: float = 0.0,
    store: dict[str, str],
) -> str:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), mode, event_id, *extra], env=_env(data_dir, store), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if wait_for is None:
        out, err = proc.communicate(timeout=120)
        return out + err
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == wait_for, proc.stderr.read() if proc.stderr else line
    if kill_after:
        time.sleep(kill_after)  # the child is committing back to back: the kill lands wherever it is
    proc.kill()  # SIGKILL: no cleanup, no atexit, no on_commit leftovers
    proc.wait(timeout=30)
    assert proc.returncode == -9
    return line


def _recover(
    event_id: str, data_dir: Path, store: dict[str, str], *, mode: str = "recover"
) -> dict[str, int]:
    out = _child(mode, event_id, data_dir, store=store)
    return json.loads(out.strip().splitlines()[-1])


def _killed_by_itself(mode: str, event_id: str, data_dir: Path, store: dict[str, str], *extra: str) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), mode, event_id, *extra],
        env=_env(data_dir, store),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stdout + done.stderr  # SIGKILL, inside the commit
    assert "SURVIVED" not in done.stdout


def test_a_kill_after_commit_leaves_the_event_stored_exactly_once_after_recovery(tmp_path, store_env):
    event_id = uuid.uuid4().hex
    _child("commit", event_id, tmp_path, wait_for="COMMITTED", store=store_env)
    assert _recover(event_id, tmp_path, store_env) == {"copies": 1, "outbox": 1, "unmoved": 0, "business": 1}


def test_a_kill_between_store_and_stamp_still_stores_once(tmp_path, store_env):
    event_id = uuid.uuid4().hex
    _child("commit", event_id, tmp_path, wait_for="COMMITTED", store=store_env)
    died = _child("die_after_store", event_id, tmp_path, store=store_env)
    assert "Traceback" not in died
    assert _recover(event_id, tmp_path, store_env) == {"copies": 1, "outbox": 1, "unmoved": 0, "business": 1}


def test_a_kill_mid_transaction_leaves_neither_row_nor_event(tmp_path, store_env):
    event_id = uuid.uuid4().hex
    _child("in_transaction", event_id, tmp_path, wait_for="INSIDE", store=store_env)
    assert _recover(event_id, tmp_path, store_env) == {"copies": 0, "outbox": 0, "unmoved": 0, "business": 0}


NOTHING = {"copies": 0, "outbox": 0, "unmoved": 0, "business": 0}
ONCE = {"copies": 1, "outbox": 1, "unmoved": 0, "business": 1}


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # SQLite had begun the COMMIT but written nothing: the business row and its event are both gone.
        # PostgreSQL had been sent the COMMIT, whose answer never arrived: the server committed anyway.
        ("statement", {"sqlite": NOTHING, "postgres": ONCE}),
        # The COMMIT was done, the move was never scheduled: recovery stores the event once.
        ("returned", {"sqlite": ONCE, "postgres": ONCE}),
    ],
)
def test_a_kill_during_commit_stores_the_event_exactly_once_if_and_only_if_the_commit_held(
    tmp_path, store_env, when, expected
):
    event_id = uuid.uuid4().hex
    _killed_by_itself("die_in_commit", event_id, tmp_path, store_env, when)
    assert _recover(event_id, tmp_path, store_env) == expected["postgres" if store_env else "sqlite"]


def test_kills_at_arbitrary_moments_of_back_to_back_commits_lose_and_duplicate_nothing(tmp_path, store_env):
    prefix = uuid.uuid4().hex
    _child("commit_loop", prefix, tmp_path, wait_for="LOOPING", kill_after=0.8, store=store_env)
    found = _recover(prefix, tmp_path, store_env, mode="recover_all")
    assert found["committed"] > 0
    assert found == {"committed": found["committed"], "stored_once": found["committed"], "stored_twice": 0,
                     "orphans": 0, "unmoved": 0}  # fmt: skip
