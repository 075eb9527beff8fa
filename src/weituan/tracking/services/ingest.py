"""The last step of every ingestion path: dedup, then one batched insert into the analytics store.

Clicks from the write buffer, API batches, PostHog captures and outbox moves all end here, so the
rules (one counted click per link, visitor and hour; idempotency on event_id, per API key; first
touch kept forever; identity links) hold whichever door an event came through.
"""

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from redis.exceptions import LockError

from weituan.core.redis import get_redis, redis_enabled, rkey
from weituan.tracking.rows import EventName, event_columns
from weituan.tracking.spool import CLICK_COLUMNS, CLICK_FIELDS, EVENT_ID_FIELD
from weituan.tracking.store import analytics_store
from weituan.tracking.store.base import StoreError

logger = logging.getLogger(__name__)

CLICK_DEDUP_SECONDS = 3600
LOCK_SECONDS = 120  # the longest an idempotent insert may hold the event id lock
_SEEN_PRUNE_ABOVE = 200_000


@dataclass(frozen=True)
class StoreOutcome:
    stored: int
    duplicates: int


def click_seen_key(link_id: int, visitor_id: str) -> bytes:
    """The key of a (link, visitor) pair in `ClickSeen`: the click line's first two fields, as bytes.

    The /s/ fast path has them at hand as one piece (the line's start), so its check builds no tuple
    and decodes nothing; a bytes key is also hashed and compared in one object, not three.
    """
    return b"%d\t%s" % (link_id, visitor_id.encode("utf-8", "surrogatepass"))


class ClickSeen:
    """One counted click per (link, visitor) per hour, when Redis is not configured (one process).

    `until` maps the pair's key (`click_seen_key`) to the end of the hour its counted click opened;
    it is never replaced. A key is only ever added by `dict.setdefault` (one atomic call: of two
    threads adding the same key, exactly one gets its own value back) and only changed or removed
    under `lock`. So the common answers need no lock: a new key is a first click, and a key whose
    hour is not over is a repeat. Only a key whose hour is over is renewed under the lock. The /s/
    fast path (`tracking.asgi`) inlines those two answers and calls `first_key` for the rest.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.until: dict[bytes, float] = {}
        self.prune_above = _SEEN_PRUNE_ABOVE

    def firsts(self, clicks: Sequence[tuple[bytes, float]]) -> list[bool]:
        """For each (key, time) in order: is it the first click of its hour?"""
        answers = []
        with self.lock:
            until = self.until
            for key, at in clicks:
                end = at + CLICK_DEDUP_SECONDS
                seen = until.setdefault(key, end)
                if seen is end:
                    answers.append(True)
                elif at < seen:
                    answers.append(False)
                else:
                    until[key] = end
                    answers.append(True)
        self.prune()
        return answers

    def first(self, link_id: int, visitor_id: str, at: float) -> bool:
        """As `firsts`, for one click."""
        return self.first_key(click_seen_key(link_id, visitor_id), at)

    def first_key(self, key: bytes, at: float) -> bool:
        """As `first`, by the pair's key."""
        end = at + CLICK_DEDUP_SECONDS
        seen = self.until.setdefault(key, end)
        if seen is end:
            self.prune()
            return True
        if at < seen:
            return False
        with self.lock:  # its hour is over: renew it, unless another click just did
            seen = self.until.setdefault(key, end)  # pruned meanwhile: added again
            if seen is not end:
                if at < seen:
                    return False
                self.until[key] = end
        return True

    def prune(self) -> None:
        """Forget the hours that are over, once the memory holds more than `prune_above` keys."""
        if len(self.until) <= self.prune_above:
            return
        with self.lock:
            until, now = self.until, time.time()
            # A copy taken in one call: keys are added without the lock, and a dict must not grow
            # while a Python loop iterates it. Keys present now stay, with their values, until we let go.
            for key, end in list(until.items()):
                if end <= now:
                    del until[key]
            # Prune again only once the live keys have doubled: not on every click of a busy hour.
            self.prune_above = max(_SEEN_PRUNE_ABOVE, 2 * len(until))

    def clear(self) -> None:
        with self.lock:
            self.until.clear()
            self.prune_above = _SEEN_PRUNE_ABOVE


click_seen = ClickSeen()


def clicks_mark_repeats(rows: Sequence[dict[str, Any]]) -> int:
    """Flag a click as `duplicate` when the visitor already clicked that link within the hour."""
    clicks = [
        row for row in rows if row["event"] == EventName.LINK_CLICK and not row["is_bot"] and row["link_id"]
    ]
    if not clicks:
        return 0
    clicks.sort(key=lambda row: row["ts"])
    if redis_enabled():
        pipe = get_redis().pipeline(transaction=False)
        for row in clicks:
            pipe.set(rkey("clk", row["link_id"], row["visitor_id"]), 1, nx=True, ex=CLICK_DEDUP_SECONDS)
        firsts = pipe.execute()
    else:
        firsts = click_seen.firsts(
            [(click_seen_key(row["link_id"], row["visitor_id"]), _epoch(row["ts"])) for row in clicks]
        )
    repeats = 0
    for row, first in zip(clicks, firsts, strict=True):
        if not first:
            row["is_bot"] = 1
            row["bot_reason"] = "duplicate"
            repeats += 1
    return repeats


def click_first_in_process(link_id: int, visitor_id: str, at: float) -> bool | None:
    """Is this the first click of the visitor on the link within the hour, when this process alone can
    tell (no Redis: one serving process)? None when Redis is configured: the flush asks Redis then.
    """
    if settings.REDIS_URL:  # as redis_enabled(), without a call on the redirect's hot path
        return None
    return click_seen.first(link_id, visitor_id, at)


def click_lines_mark_repeats(lines: list[bytes]) -> int:
    """As `clicks_mark_repeats`, for click lines of the spool (see `spool.CLICK_COLUMNS`), in place.

    Only the first five fields are read: link_id, visitor_id, is_bot, bot_reason, ts.
    """
    candidates: list[tuple[int, list[bytes]]] = []
    for index, line in enumerate(lines):
        fields = line.split(b"\t", 5)
        if fields[2] == b"0" and fields[0] != b"0":
            candidates.append((index, fields))
    if not candidates:
        return 0
    if redis_enabled():
        pipe = get_redis().pipeline(transaction=False)
        for _, fields in candidates:
            key = rkey("clk", fields[0].decode(), fields[1].decode("utf-8", "replace"))
            pipe.set(key, 1, nx=True, ex=CLICK_DEDUP_SECONDS)
        firsts = pipe.execute()
    else:
        # The key is the line's first two fields as they are (`click_seen_key`).
        firsts = click_seen.firsts(
            [(b"%s\t%s" % (fields[0], fields[1]), float(fields[4])) for _, fields in candidates]
        )
    repeats = 0
    for (index, fields), first in zip(candidates, firsts, strict=True):
        if not first:
            fields[2] = b"1"
            fields[3] = b"duplicate"
            lines[index] = b"\t".join(fields)
            repeats += 1
    return repeats


def click_lines_store(lines: list[bytes], may_exist: bool = False) -> int:
    """Store click lines of the spool in one insert, repeats flagged; returns the lines stored.

    Lines that are not complete click lines are logged and left out. With `may_exist` (segments of
    a process that died), lines whose event_id the store already holds are left out too.
    """
    complete = [line for line in lines if line.count(b"\t") == CLICK_FIELDS - 1]
    if len(complete) != len(lines):
        logger.error("click spool: %d malformed line(s) left out", len(lines) - len(complete))
    if may_exist and complete:
        ids = [line.split(b"\t", EVENT_ID_FIELD + 1)[EVENT_ID_FIELD].decode() for line in complete]
        stored = events_existing(ids)  # clicks are Weituan's own events: key 0
        if stored:
            complete = [
                line for line, event_id in zip(complete, ids, strict=True) if (0, event_id) not in stored
            ]
    if not complete:
        return 0
    if redis_enabled():  # without Redis, repeats were flagged as each click came in
        click_lines_mark_repeats(complete)
    complete.append(b"")
    analytics_store().insert_tsv("events", CLICK_COLUMNS, b"\n".join(complete))
    return len(complete) - 1


def click_text_store(text: bytes, lines: int) -> int:
    """Store a whole segment of this process's click spool: `lines` lines, each ending in a newline.

    Every line was built by `events.click_line` (or the /s/ fast path, which builds the same) with
    exactly CLICK_FIELDS fields, so the text is checked in bulk, by its number of tabs, and goes to
    the store as it is. When the count is off, when the store refuses the text, or when Redis flags
    repeats at flush time, the lines go through `click_lines_store` one by one (a store that is
    down refuses those too, and the segment waits for the next flush).
    """
    if not redis_enabled() and text.count(b"\t") == lines * (CLICK_FIELDS - 1):
        try:
            analytics_store().insert_tsv("events", CLICK_COLUMNS, text)
            return lines
        except StoreError:
            logger.exception("click spool: a segment was refused whole; storing it line by line")
    return click_lines_store(text.split(b"\n")[:-1])


def click_segments_store(segments: Sequence[tuple[Path, int]]) -> list[int] | None:
    """Store whole sealed segments of this process's click spool, (path, bytes used), in one insert.

    The store reads the files and checks them in bulk as `click_text_store` does (see
    `AnalyticsStore.insert_tsv_files`), so the serving process neither reads nor copies their text.
    Returns each segment's number of lines; None, with nothing stored, when they must go through
    `click_text_store` one by one: Redis flags repeats at flush time, a segment is not whole click
    lines, or the store refused the insert (a store that is down refuses those too).
    """
    if redis_enabled():
        return None
    files = [(str(path), size) for path, size in segments]
    try:
        return analytics_store().insert_tsv_files("events", CLICK_COLUMNS, files)
    except StoreError:
        logger.exception("click spool: %d segment(s) refused together; storing them one by one", len(files))
        return None


def events_existing(event_ids: Sequence[str]) -> set[tuple[int, str]]:
    """The (API key id, event id) pairs the store holds for these event ids (key 0: Weituan's own).

    An event id is only unique under its key: two sites may both send `order-1`.
    """
    if not event_ids:
        return set()
    rows = analytics_store().query(
        "SELECT DISTINCT api_key_id, event_id FROM events WHERE event_id IN {ids:Array(String)}",
        {"ids": list(set(event_ids))},
    )
    return {(int(row["api_key_id"]), row["event_id"]) for row in rows}


def events_store(rows: Sequence[dict[str, Any]], *, check_existing: bool = False) -> StoreOutcome:
    """Write complete event rows (see rows.event_row) in one insert.

    With `check_existing`, rows whose event_id is already stored under their API key, or repeated
    in the batch under it, are skipped: this is what makes API ingestion and outbox moves idempotent. Such batches arriving
    at the same time are stored together (see `_GroupCommit`). First touch and identity links
    follow inside the store (materialized views of 0002_derived_views.sql).
    """
    if check_existing:
        return _group_commit.store(rows)
    _insert(rows)
    return StoreOutcome(stored=len(rows), duplicates=0)


def _insert(rows: Sequence[dict[str, Any]]) -> None:
    clicks_mark_repeats(rows)
    if rows:
        names, columns = event_columns(rows)
        analytics_store().insert_columns("events", names, columns)


class _Pending:
    __slots__ = ("done", "error", "outcome", "rows")

    def __init__(self, rows: Sequence[dict[str, Any]]):
        self.rows = rows
        self.done = False
        self.outcome = StoreOutcome(0, 0)
        self.error: BaseException | None = None


class _GroupCommit:
    """Idempotent batches that arrive while another is being stored wait and go in together.

    Each insert has a large fixed cost in the store, and so does the lookup of existing event ids;
    one of each per group instead of per request multiplies the throughput of concurrent API
    clients. Every caller still returns only once its rows are stored (or raises if they were not).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._waiting: list[_Pending] = []
        self._busy = False

    def store(self, rows: Sequence[dict[str, Any]]) -> StoreOutcome:
        mine = _Pending(rows)
        with self._cond:
            self._waiting.append(mine)
            while self._busy and not mine.done:
                self._cond.wait()
            if not mine.done:
                self._busy = True
                group, self._waiting = self._waiting, []
        if not mine.done:
            try:
                _store_group(group)
            except BaseException as exc:
                for pending in group:
                    pending.error = exc
            with self._cond:
                for pending in group:
                    pending.done = True
                self._busy = False
                self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.outcome


@contextlib.contextmanager
def _event_ids_lock() -> Iterator[None]:
    """Held from the lookup of a group's event ids to the end of its insert, across processes.

    Two processes storing the same event id at once would each find it absent and both insert it.
    With Redis, processes on any machine share one Redis lock; without, the processes of one data
    directory (servers, workers, commands sharing one store) share a `flock` on a file in it.
    """
    if redis_enabled():
        lock = get_redis().lock(rkey("ingest-ids"), timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS)
        if not lock.acquire():
            raise StoreError(f"the event id lock was not free within {LOCK_SECONDS} s")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # held past its timeout: another holder may have it now
                lock.release()
        return
    path = Path(settings.DATA_DIR) / "ingest-ids.lock"
    with path.open("ab") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


def _store_group(group: list[_Pending]) -> None:
    """Skip stored and repeated event ids (the earlier batch wins), then store the rest in one insert."""
    with _event_ids_lock():
        _store_group_locked(group)


def _store_group_locked(group: list[_Pending]) -> None:
    seen = events_existing([row["event_id"] for pending in group for row in pending.rows])
    fresh: list[dict[str, Any]] = []
    counts = []
    for pending in group:
        before = len(fresh)
        duplicates = 0
        for row in pending.rows:
            keyed_id = (row["api_key_id"], row["event_id"])
            if keyed_id in seen:
                duplicates += 1
                continue
            seen.add(keyed_id)
            fresh.append(row)
        counts.append((len(fresh) - before, duplicates))
    _insert(fresh)
    for pending, (stored, duplicates) in zip(group, counts, strict=True):
        pending.outcome = StoreOutcome(stored=stored, duplicates=duplicates)


_group_commit = _GroupCommit()


def ingest_memory_clear() -> None:
    """Forget the in-process click memory (a fresh store, a new test)."""
    click_seen.clear()


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
