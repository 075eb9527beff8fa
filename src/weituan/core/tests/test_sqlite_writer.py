"""The queue for SQLite's write lock (`sqlite_writer`): writers in threads of one process and in other
processes take turns on it, even while the database itself is free; a writer already inside a
transaction passes straight through; a queued writer that finds the database locked by one that does
not queue asks again after short pauses, not SQLite's busy handler's sleeps."""

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction

from weituan.core import sqlite_writer as writer_module
from weituan.core.sqlite_writer import sqlite_writer

ALIAS = "queued_file"


@pytest.fixture
def queued_file(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    """A SQLite database file reached through its own alias, set up as the product's (WAL, BEGIN
    IMMEDIATE); the tests' own database is not used."""
    with django_db_blocker.unblock():
        yield from _queued_file(tmp_path)


def _queued_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "queued.sqlite3"
    connections.settings[ALIAS] = {
        **connections["default"].settings_dict,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL"},
    }
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("CREATE TABLE turns (who TEXT)")
    yield path
    connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]


def _write_in_thread(who: str, done: threading.Event) -> threading.Thread:
    def write() -> None:
        try:
            with (
                sqlite_writer(ALIAS),
                transaction.atomic(using=ALIAS),
                connections[ALIAS].cursor() as cursor,
            ):
                cursor.execute("INSERT INTO turns VALUES (%s)", [who])
            done.set()
        finally:
            connections[ALIAS].close()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _turns() -> list[str]:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT who FROM turns")
        return [row[0] for row in cursor.fetchall()]


def test_a_writer_waits_its_turn_behind_another_thread_though_the_database_is_free(queued_file: Path) -> None:
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with sqlite_writer(ALIAS):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    writer = _write_in_thread("second", done)
    # Nothing locks the database itself: only the queue keeps the writer from it.
    assert not done.wait(0.3)
    assert _turns() == []
    release.set()
    assert done.wait(10)
    holder.join()
    writer.join()
    assert _turns() == ["second"]


def test_a_writer_waits_its_turn_behind_another_process(queued_file: Path) -> None:
    # Another server process holding the queue: the lock file beside the database.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            f"fd = os.open({str(queued_file) + '-writer.lock'!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = threading.Event()
        writer = _write_in_thread("after the other process", done)
        assert not done.wait(0.3)
        assert holder.stdin is not None
        holder.stdin.close()  # the other process ends, and its lock with it
        assert done.wait(10)
        writer.join()
    finally:
        holder.kill()
        holder.wait()
    assert _turns() == ["after the other process"]


def test_inside_a_transaction_a_writer_is_not_queued_again(queued_file: Path) -> None:
    # The transaction's writer already holds the queue (and the database's lock): a nested write must
    # not wait on itself.
    with (
        sqlite_writer(ALIAS),
        transaction.atomic(using=ALIAS),
        sqlite_writer(ALIAS),
        connections[ALIAS].cursor() as cursor,
    ):
        cursor.execute("INSERT INTO turns VALUES ('nested')")
    assert _turns() == ["nested"]


def _busy_timeout() -> int:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        return int(cursor.fetchone()[0])


def _locked_by_another(path: Path) -> sqlite3.Connection:
    """A connection that does not queue (as the task worker's) holding the database's write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO turns VALUES ('other')")
    return other


def test_a_queued_writer_asks_again_for_a_lock_held_by_one_that_does_not_queue(
    queued_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 5000")
    other = _locked_by_another(queued_file)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            other.execute("COMMIT")  # the other writer is done while the queued one pauses

    monkeypatch.setattr(writer_module, "_pause", pause)
    with sqlite_writer(ALIAS), transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO turns VALUES ('queued')")
    other.close()
    # Asked again after 50 us, doubling to at most 1 ms, where SQLite's handler sleeps 1, 2, 5... ms.
    assert pauses == [0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.001]
    assert _turns() == ["other", "queued"]
    assert _busy_timeout() == 5000  # the connection's own timeout is back for what follows


def test_a_queued_writer_fails_as_sqlite_would_once_its_busy_timeout_has_passed(queued_file: Path) -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 100")
    other = _locked_by_another(queued_file)
    try:
        with (
            pytest.raises(OperationalError, match="database is locked"),
            sqlite_writer(ALIAS),
            transaction.atomic(using=ALIAS),
        ):
            pytest.fail("the block ran without the lock")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _busy_timeout() == 100
    assert not connections[ALIAS].in_atomic_block
    with sqlite_writer(ALIAS), transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO turns VALUES ('later')")  # the connection is fit for the next write
    assert _turns() == ["later"]


def test_a_hook_of_a_queued_write_may_queue_a_write_of_its_own(queued_file: Path) -> None:
    # A task run inline once the write commits (as the tests' task backend runs them) writing again.
    def hook() -> None:
        with (
            sqlite_writer(ALIAS),
            transaction.atomic(using=ALIAS),
            connections[ALIAS].cursor() as cursor,
        ):
            cursor.execute("INSERT INTO turns VALUES ('hook')")

    done = threading.Event()

    def write() -> None:
        try:
            with sqlite_writer(ALIAS), transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
                cursor.execute("INSERT INTO turns VALUES ('write')")
                transaction.on_commit(hook, using=ALIAS)
            done.set()
        finally:
            connections[ALIAS].close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert done.wait(10), "the hook waited on its own thread's turn"
    writer.join()
    assert sorted(_turns()) == ["hook", "write"]
    # and the queue is free again for another thread
    other = _write_in_thread("after", threading.Event())
    other.join(10)
    assert sorted(_turns()) == ["after", "hook", "write"]


def test_only_the_queued_blocks_begin_is_wrapped(queued_file: Path) -> None:
    # The prompt BEGIN's wrapper leaves once the transaction has begun: the block's statements run as
    # if nothing wrapped them (so that fast paths skipping Django's cursor stay open to them), and a
    # block that ends before any BEGIN takes its wrapper away too.
    database = connections[ALIAS]
    seen: list[int] = []
    with sqlite_writer(ALIAS):
        assert len(database.execute_wrappers) == 1
        with transaction.atomic(using=ALIAS), database.cursor() as cursor:
            seen.append(len(database.execute_wrappers))
            cursor.execute("INSERT INTO turns VALUES ('block')")
    assert seen == [0]
    with sqlite_writer(ALIAS):
        pass
    assert database.execute_wrappers == []
    with pytest.raises(ValueError), sqlite_writer(ALIAS):
        raise ValueError("before any statement")
    assert database.execute_wrappers == []
    assert _turns() == ["block"]
