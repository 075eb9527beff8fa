"""SQLite's WAL checkpoints held back from a queued writer's commits and run once enough writes are done."""

import os
import select
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper

from weituan.core import sqlite_checkpoint
from weituan.core.sqlite_checkpoint import CHECKPOINT_EVERY, checkpoints_held


@pytest.fixture
def file_database(tmp_path: Path) -> Iterator[Any]:
    """A Django SQLite connection to a database file in WAL mode (the tests' own database is in memory)."""
    settings = {
        **connections["default"].settings_dict,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(tmp_path / "wal.sqlite3"),
        "OPTIONS": {},
    }
    database = DatabaseWrapper(settings, alias="wal_file")
    with database.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("CREATE TABLE rows (body BLOB)")
    yield database
    database.close()


@pytest.mark.django_db
def test_queued_writes_checkpoint_only_when_due(file_database: Any) -> None:
    path = Path(file_database.settings_dict["NAME"])
    # Writes this process already counted (other tests' queued writes) bring the checkpoint nearer.
    before_due = CHECKPOINT_EVERY - sqlite_checkpoint._writes[0]

    def autocheckpoint() -> int:
        with file_database.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            return int(cursor.fetchone()[0])

    with checkpoints_held(file_database, writes=before_due - 1):
        assert autocheckpoint() == 0
        with file_database.cursor() as cursor:
            for _ in range(300):  # well past the 1,000 pages at which a commit would checkpoint by itself
                cursor.execute("INSERT INTO rows VALUES (zeroblob(16000))")
    assert autocheckpoint() == 1000  # as it was
    assert path.stat().st_size < 64 * 1024  # every page still only in the log

    checkpointer = sqlite_checkpoint.checkpointer_of(str(path))
    done = checkpointer.done
    with checkpoints_held(file_database), file_database.cursor() as cursor:
        cursor.execute("INSERT INTO rows VALUES (zeroblob(16000))")
    assert sqlite_checkpoint._writes == [0]  # counting starts over
    # The due checkpoint runs on the checkpointer's thread, which copies the log into the file.
    _until(lambda: checkpointer.done > done)
    assert path.stat().st_size > 301 * 16000


def _until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def _thread_of(checkpointer: Any) -> threading.Thread:
    thread = checkpointer._thread
    assert thread is not None
    return thread


@pytest.mark.django_db
def test_a_checkpointer_ends_when_idle_and_starts_again_when_asked(
    file_database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = Path(file_database.settings_dict["NAME"])
    with file_database.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.executemany("INSERT INTO rows VALUES (zeroblob(16000))", [()] * 50)
    assert path.stat().st_size < 64 * 1024
    checkpointer = sqlite_checkpoint.Checkpointer(str(path))
    checkpointer.ask()
    _until(lambda: checkpointer.done == 1)
    assert path.stat().st_size > 50 * 16000
    first = _thread_of(checkpointer)
    monkeypatch.setattr(sqlite_checkpoint, "IDLE_SECONDS", 0.05)
    checkpointer.ask()  # wakes it; it then waits the shorter idle time and ends
    _until(lambda: checkpointer.done == 2)
    first.join(30)
    assert not first.is_alive() and checkpointer._thread is None
    with file_database.cursor() as cursor:
        cursor.execute("INSERT INTO rows VALUES (zeroblob(16000))")
    checkpointer.ask()  # a new thread answers
    _until(lambda: checkpointer.done == 3)
    assert _thread_of(checkpointer) is not first


@pytest.mark.django_db
def test_a_checkpointer_that_cannot_open_its_file_logs_it_and_tries_again_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "gone.sqlite3"
    checkpointer = sqlite_checkpoint.Checkpointer(str(missing))
    checkpointer.ask()
    thread = _thread_of(checkpointer)
    thread.join(30)
    assert checkpointer._thread is None and checkpointer.done == 0
    assert not missing.exists()  # a checkpointer never makes a database
    assert any("checkpointer of" in record.getMessage() for record in caplog.records)
    sqlite3.connect(missing).close()
    checkpointer.ask()
    _until(lambda: checkpointer.done == 1)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_with_no_checkpointers_and_a_free_lock(tmp_path: Path) -> None:
    checkpointer = sqlite_checkpoint.checkpointer_of(str(tmp_path / "parent.sqlite3"))
    read, write = os.pipe()
    with sqlite_checkpoint._lock:  # held while the process forks
        child = os.fork()
        if child == 0:  # the child reports through the pipe
            fresh = sqlite_checkpoint.checkpointer_of(str(tmp_path / "parent.sqlite3"))
            os.write(write, b"1" if fresh is not checkpointer and sqlite_checkpoint._writes == [0] else b"0")
            os._exit(0)
    os.close(write)
    try:
        # A child stuck on its parent's lock never answers: kill it rather than wait for ever.
        answered, _, _ = select.select([read], [], [], 30)
        if not answered:
            os.kill(child, signal.SIGKILL)
        assert answered and os.read(read, 1) == b"1", "the child did not get a fresh checkpointer"
    finally:
        os.close(read)
        os.waitpid(child, 0)


@pytest.mark.django_db
def test_a_checkpointer_opens_a_file_whose_directory_name_a_uri_would_misread(tmp_path: Path) -> None:
    folder = tmp_path / "shop #1 ?50%"
    folder.mkdir()
    path = folder / "weituan.sqlite3"
    with closing(sqlite3.connect(path)) as database:
        database.execute("PRAGMA journal_mode=WAL")
        database.execute("PRAGMA wal_autocheckpoint=0")
        database.execute("CREATE TABLE rows (body BLOB)")
        database.executemany("INSERT INTO rows VALUES (zeroblob(16000))", [()] * 20)
        database.commit()
        assert path.stat().st_size < 64 * 1024
        checkpointer = sqlite_checkpoint.Checkpointer(str(path))
        checkpointer.ask()
        _until(lambda: checkpointer.done == 1)
        assert path.stat().st_size > 20 * 16000
