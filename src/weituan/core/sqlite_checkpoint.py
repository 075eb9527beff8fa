"""SQLite's WAL checkpoints kept out of the queued writers' lock (`sqlite_writer`).

In WAL mode a commit that finds the log past `wal_autocheckpoint` pages (1,000) copies it back into the
database file and syncs it, inside that commit: one post in a few dozen paid 10-130 ms for it, half of
all commit time, while holding the write queue every other post waits on. A queued write runs inside
`checkpoints_held`: its connection's automatic checkpoint is off for the block, and once the block is
done (the lock released) a passive checkpoint, the kind the automatic one is (it never waits on
readers or writers), is due every CHECKPOINT_EVERY such writes of the process. It runs on a thread of
the process's own (`Checkpointer`, one per database file, on a connection of its own), so the thread
that wrote, often the only one answering requests, goes on meanwhile: the copy and sync run in SQLite
with the GIL released, on the other core. Outside these blocks every connection checkpoints at commit
as before, so the log stays bounded whoever writes. On PostgreSQL, for an in-memory database and
inside a transaction (whose commit is its caller's), it does nothing.
"""

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from django.db import connections

log = logging.getLogger(__name__)

# At about 40 log pages a post, 32 posts keep the log near the automatic threshold's size.
CHECKPOINT_EVERY = 32
# A checkpointer with nothing asked of it for this long closes its connection and ends its thread.
IDLE_SECONDS = 60.0

_lock = threading.Lock()
_writes = [0]  # queued writes of this process since its last checkpoint


class Checkpointer:
    """A thread that runs passive checkpoints of one database file when asked (`ask`): asks that come
    while one runs are answered by the next. It ends after IDLE_SECONDS without an ask, or on an error
    it cannot go on from (logged); the next ask starts another."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = 0  # checkpoints that ran to the end
        self._asked = threading.Event()
        self._thread: threading.Thread | None = None

    def ask(self) -> None:
        """Have a checkpoint run soon. Never raises: a write that asked has committed already, and the
        next commit past the log's threshold checkpoints by itself should no thread be had."""
        with _lock:
            self._asked.set()
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._run, name="weituan-sqlite-checkpoint", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (the interpreter is ending, or out of them)
                log.warning("no thread for the SQLite checkpoint of %s", self.path, exc_info=True)
                self._thread = None
                return
            self._thread = thread

    def _run(self) -> None:
        try:
            # The file as it is (mode=rw): a checkpointer never makes a database. The path is quoted, as
            # a URI's must be (a `?`, `#` or `%` in a directory's name).
            database = sqlite3.connect(
                f"file:{quote(self.path)}?mode=rw", uri=True, timeout=20, check_same_thread=False
            )
            try:
                self._serve(database)
            finally:
                database.close()
        except Exception:
            log.exception("SQLite checkpointer of %s stopped", self.path)
        finally:
            with _lock:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _serve(self, database: sqlite3.Connection) -> None:
        while True:
            if not self._asked.wait(IDLE_SECONDS):
                with _lock:
                    if not self._asked.is_set():
                        # Let go under the lock: an ask from now on starts another thread.
                        if self._thread is threading.current_thread():
                            self._thread = None
                        return
            self._asked.clear()
            try:
                database.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                # The next commit past the log's threshold, or the next ask, checkpoints instead.
                log.exception("SQLite checkpoint of %s failed", self.path)
                continue
            self.done += 1


_checkpointers: dict[str, Checkpointer] = {}


def checkpointer_of(path: str) -> Checkpointer:
    """The process's checkpointer of the database file at `path`."""
    with _lock:
        found = _checkpointers.get(path)
        if found is None:
            found = _checkpointers[path] = Checkpointer(path)
        return found


def _forget_after_fork() -> None:
    """A forked child has none of its parent's threads, and may hold a copy of a lock taken mid-use."""
    global _lock
    _lock = threading.Lock()
    _checkpointers.clear()
    _writes[0] = 0


os.register_at_fork(after_in_child=_forget_after_fork)


def _raw_sqlite(database: Any) -> Any:
    if database.vendor != "sqlite" or database.is_in_memory_db():
        return None
    database.ensure_connection()
    return database.connection


@contextmanager
def checkpoints_held(database: Any = None, *, writes: int = 1) -> Iterator[None]:
    """Run the block (`writes` queued writes: posts, say) on `database` (a connection of
    `django.db.connections`, the default one unless given) without checkpointing at its commits; after
    it, a passive checkpoint is asked of the file's checkpointer once the process has made
    CHECKPOINT_EVERY of them since its last."""
    database = connections["default"] if database is None else database
    raw = _raw_sqlite(database) if not database.in_atomic_block else None
    if raw is None:  # nothing to hold: not SQLite, in memory, or inside a caller's transaction
        yield
        return
    # On the bare connection: a setting of the connection, not one of the request's statements.
    automatic = raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    raw.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield
    finally:
        if database.connection is raw:  # not closed after an error meanwhile
            raw.execute(f"PRAGMA wal_autocheckpoint={int(automatic)}")
    with _lock:
        _writes[0] += writes
        due = _writes[0] >= CHECKPOINT_EVERY
        if due:
            _writes[0] = 0
    if due:
        checkpointer_of(str(database.settings_dict["NAME"])).ask()
