"""One writing transaction at a time on SQLite, queued rather than polled.

SQLite lets one transaction write at a time. A writer that finds the lock taken is retried by SQLite's
busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries: under a steady stream of short
write transactions (posting) most of a waiter's time is spent asleep after the lock was already free.
Wrapping a hot write transaction in `sqlite_writer()` queues it instead, on a lock that wakes the next
waiter as soon as the holder is done: a thread lock within the process and an advisory file lock
(flock) beside the database file across the server's processes. Writers that do not queue (the task
worker, occasional writes) still get the database's lock through the busy handler as before, so
correctness never depends on this; only waiting does. On PostgreSQL, inside an open transaction (whose
writer already holds the lock) and for an in-memory database, it does nothing.

A queued writer can still find the database's lock taken by one that does not queue (the worker
claiming a task, say, for a fraction of a millisecond). SQLite's busy handler would then put it to
sleep for 1, then 2, then 5 ms before it looks again; the first BEGIN of a queued block (its
transaction is the one queued for) instead asks again after 50 microseconds, doubling to at most a
millisecond (`_begin_promptly`), within the same overall busy timeout. The wrapper that does it leaves
once that BEGIN has run, so the block's statements run unwrapped and a later transaction of the same
block (an `on_commit` hook's, say) waits in the busy handler as any other.

A block `with sqlite_writer(), transaction.atomic():` runs its `on_commit` hooks after the commit but
before the queue is released: they may enqueue tasks and write outside a transaction (a hook's own
queued write goes straight on, the turn being its thread's already), and should be short, since every
other queued writer waits.
"""

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

# The first pause of a queued writer's BEGIN that found the database locked, and the longest.
FIRST_PAUSE = 0.00005
LONGEST_PAUSE = 0.001

_thread_lock = threading.Lock()
_holder: list[int | None] = [None]  # the thread whose turn it is
# Per process: a descriptor inherited across a fork would share its lock with the parent's.
_files: dict[tuple[int, str], int] = {}


def _lock_file(database: str) -> int | None:
    if not database or database == ":memory:" or "mode=memory" in database:
        return None
    path = f"{database}-writer.lock"
    found = _files.get((os.getpid(), path))
    if found is None:
        found = _files[(os.getpid(), path)] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return found


@contextmanager
def sqlite_writer(using: str = "default") -> Iterator[None]:
    """Run the block as the only queued writer of the SQLite database (see the module docstring)."""
    connection = connections[using]
    me = threading.get_ident()
    if connection.vendor != "sqlite" or connection.in_atomic_block or _holder[0] == me:
        # Already this thread's turn (an `on_commit` hook of its block writing again): it goes on.
        yield
        return
    with _thread_lock:
        descriptor = _lock_file(str(connection.settings_dict["NAME"]))
        if descriptor is None:
            yield
            return
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        _holder[0] = me
        wrappers = connection.execute_wrappers
        wrapper = _PromptBegin(wrappers)
        wrappers.append(wrapper)
        try:
            yield
        finally:
            if wrapper in wrappers:
                wrappers.remove(wrapper)
            _holder[0] = None
            fcntl.flock(descriptor, fcntl.LOCK_UN)


class _PromptBegin:
    """The execute wrapper of a queued writer's connection until its BEGIN has run (`_begin_promptly`);
    then it leaves `wrappers`, so the block's other statements run as if unwrapped (fast paths that
    skip Django's cursor when nothing wraps it, such as `core.rows.fetch_rows`, stay open to them)."""

    def __init__(self, wrappers: list[Any]) -> None:
        self.wrappers = wrappers

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
    ) -> Any:
        if not sql.startswith("BEGIN"):
            return execute(sql, params, many, context)
        answer = _begin_promptly(execute, sql, params, many, context)
        if self in self.wrappers:
            self.wrappers.remove(self)
        return answer


def _begin_promptly(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    """Run a BEGIN without SQLite's busy handler: while another connection holds the write lock, ask
    again after a short pause (FIRST_PAUSE, doubling to LONGEST_PAUSE) until the connection's busy
    timeout has passed, then fail as SQLite would."""
    raw = context["connection"].connection
    waited_ms = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    raw.execute("PRAGMA busy_timeout = 0")
    begun = False
    try:
        deadline = time.monotonic() + waited_ms / 1000
        pause = FIRST_PAUSE
        while True:
            try:
                answer = execute(sql, params, many, context)
                begun = True
                return answer
            except Exception as exc:
                if not _locked(exc) or time.monotonic() >= deadline:
                    raise
            _pause(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
    finally:
        try:
            raw.execute(f"PRAGMA busy_timeout = {int(waited_ms)}")
        except sqlite3.Error:
            if begun:
                raise  # else the BEGIN's own error, on its way out, says more


# How a queued writer waits between two asks (the tests count the pauses).
_pause = time.sleep


def _locked(exc: BaseException) -> bool:
    """Whether `exc` (as Django raises it, or sqlite3's own) is SQLite's SQLITE_BUSY, or one of its
    extended codes (a connection recovering the log, say)."""
    cause = exc if isinstance(exc, sqlite3.OperationalError) else exc.__cause__
    code = getattr(cause, "sqlite_errorcode", None) if isinstance(cause, sqlite3.OperationalError) else None
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY
