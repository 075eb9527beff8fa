"""Time-sortable 64-bit ids (Snowflake-like), so timelines can page by id alone.

Layout, high bit first: 1 sign bit (always 0), 41 bits of milliseconds since 2020-01-01 UTC,
8 bits of process tag, 14 bits of per-millisecond sequence. Ids made later compare greater,
and `id_at(ts)` gives the smallest id of a moment, which turns a time range into an id range.
"""

import os
import random
import threading
import time
from datetime import UTC, datetime

EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
# The largest id any row can have (a signed 64-bit integer, as both stores keep ids). A larger number
# a client sends names nothing, and the stores refuse to even compare with it.
MAX_ID = (1 << 63) - 1


class IdConverter:
    """The `id` path converter: digits naming a number no larger than MAX_ID. A larger number matches
    no route, so it is answered as any unknown path is (the API's 404 `not_found`), never handed to
    the stores, which cannot even compare with it."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{value} is beyond any id")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


_TAG_BITS = 8
_SEQ_BITS = 14
_SEQ_MASK = (1 << _SEQ_BITS) - 1
_TIME_SHIFT = _TAG_BITS + _SEQ_BITS

_lock = threading.Lock()
_last_ms = 0
_seq = 0
_tag = (os.getpid() ^ random.getrandbits(8)) & ((1 << _TAG_BITS) - 1)


def _reseed_after_fork() -> None:
    global _tag, _last_ms, _seq
    _tag = (os.getpid() ^ random.getrandbits(8)) & ((1 << _TAG_BITS) - 1)
    _last_ms = 0
    _seq = 0


os.register_at_fork(after_in_child=_reseed_after_fork)


def next_id() -> int:
    """A new id, greater than every id this process made before."""
    global _last_ms, _seq
    with _lock:
        now = int(time.time() * 1000) - EPOCH_MS
        if now <= _last_ms:
            now = _last_ms
            _seq = (_seq + 1) & _SEQ_MASK
            if _seq == 0:
                # 16,384 ids in one millisecond: borrow the next millisecond rather than repeat.
                now += 1
        else:
            _seq = random.getrandbits(6)  # spread the start so two processes rarely collide
        _last_ms = now
        return (now << _TIME_SHIFT) | (_tag << _SEQ_BITS) | _seq


def id_at(moment: datetime) -> int:
    """The smallest id that could be made at `moment`."""
    ms = int(moment.timestamp() * 1000) - EPOCH_MS
    return max(ms, 0) << _TIME_SHIFT


def time_of(snowflake: int) -> datetime:
    """When an id was made, to the millisecond."""
    return datetime.fromtimestamp(((snowflake >> _TIME_SHIFT) + EPOCH_MS) / 1000, tz=UTC)


def id_for(moment: datetime, sequence: int) -> int:
    """An id for a past moment, for loading history in bulk; `sequence` (< 2**22) separates ids of one millisecond."""
    ms = int(moment.timestamp() * 1000) - EPOCH_MS
    return (max(ms, 0) << _TIME_SHIFT) | (sequence & ((1 << _TIME_SHIFT) - 1))
