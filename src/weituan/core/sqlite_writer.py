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

A block `with sqlite_writer(), transaction.atomic():` runs its `on_commit` hooks after the commit but
before the queue is released: they may enqueue tasks and write outside a transaction, but must not
queue again (the lock is not reentrant), and should be short, since every other queued writer waits.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

_thread_lock = threading.Lock()
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
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with _thread_lock:
        descriptor = _lock_file(str(connection.settings_dict["NAME"]))
        if descriptor is None:
            yield
            return
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
