"""SQLite's WAL checkpoints held back from a queued writer's commits and run once enough writes are done."""

import sqlite3
from pathlib import Path
from typing import Any

from django.db import connections

from weituan.core import sqlite_checkpoint
from weituan.core.sqlite_checkpoint import CHECKPOINT_EVERY, checkpoints_held


def test_queued_writes_checkpoint_only_when_due(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "wal.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE rows (body BLOB)")
    wrapper = connections["default"]
    monkeypatch.setattr(sqlite_checkpoint, "_raw_sqlite", lambda using: raw)
    monkeypatch.setattr(wrapper, "connection", raw)
    monkeypatch.setattr(sqlite_checkpoint, "_writes", [0])

    with checkpoints_held(writes=CHECKPOINT_EVERY - 1):
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        for _ in range(300):  # well past the 1,000 pages at which a commit would checkpoint by itself
            raw.execute("INSERT INTO rows VALUES (zeroblob(16000))")
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)  # as it was
    assert path.stat().st_size < 64 * 1024  # every page still only in the log

    with checkpoints_held():
        raw.execute("INSERT INTO rows VALUES (zeroblob(16000))")
    assert path.stat().st_size > 301 * 16000  # the due checkpoint copied the log into the file
    assert sqlite_checkpoint._writes == [0]  # and counting starts over
