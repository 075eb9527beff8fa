"""SQLite's WAL checkpoints kept out of the queued writers' lock (`sqlite_writer`).

In WAL mode a commit that finds the log past `wal_autocheckpoint` pages (1,000) copies it back into the
database file and syncs it, inside that commit: one post in a few dozen paid 10-130 ms for it, half of
all commit time, while holding the write queue every other post waits on. A queued write runs inside
`checkpoints_held`: its connection's automatic checkpoint is off for the block, and once the block is
done (the lock released) a passive checkpoint, the kind the automatic one is (it never waits on
readers or writers), runs every CHECKPOINT_EVERY such writes of the process. Outside these blocks
every connection checkpoints at commit as before, so the log stays bounded whoever writes. On
PostgreSQL, for an in-memory database and inside a transaction (whose commit is its caller's), it does
nothing.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections

# At about 40 log pages a post, 32 posts keep the log near the automatic threshold's size.
CHECKPOINT_EVERY = 32

_lock = threading.Lock()
_writes = [0]  # queued writes of this process since its last checkpoint


def _raw_sqlite(database: Any) -> Any:
    if database.vendor != "sqlite" or database.is_in_memory_db():
        return None
    database.ensure_connection()
    return database.connection


@contextmanager
def checkpoints_held(database: Any = None, *, writes: int = 1) -> Iterator[None]:
    """Run the block (`writes` queued writes: posts, say) on `database` (a connection of
    `django.db.connections`, the default one unless given) without checkpointing at its commits; after
    it, a passive checkpoint once the process has made CHECKPOINT_EVERY of them since its last."""
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
    if due and database.connection is raw:
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
