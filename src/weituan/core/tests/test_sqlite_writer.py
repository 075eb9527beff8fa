"""The queue for SQLite's write lock (`sqlite_writer`): writers in threads of one process and in other
processes take turns on it, even while the database itself is free; a writer already inside a
transaction passes straight through."""

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction

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
