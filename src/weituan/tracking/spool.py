"""The click spool: every click is written to a local segment file before its redirect is answered.

A click line is already the TabSeparated text of its `events` row (columns in `CLICK_COLUMNS`), so
the redirect's only storage work is a copy into a memory-mapped segment file (no system call per
click), and the flusher inserts whole segments with next to no Python work. The flusher seals the
open segment (the next click opens a new one), inserts the sealed segments in order and deletes
each once the store has taken it. Segments are allocated on disk in full when opened, so a full
disk is noticed then, not in the middle of a click.

What a crash loses:
- a `kill -9` (or any other death of the process) loses no answered click: the segment's pages
  belong to the kernel's page cache, not to the process. The next process that flushes adopts the
  dead process's segments (a live owner holds an exclusive `flock` on each of its segments) and
  stores the clicks the store does not hold yet, by `event_id`, so a segment stored just before the
  crash is not stored twice. A line cut short by the crash belongs to a click that was not answered
  and is dropped;
- a power cut or kernel crash may lose what the kernel had not yet written back to the disk (there
  is no `fsync` per click);
- when no segment can be opened (disk full), clicks are kept in memory and stored at the next
  flush; only those would a `kill -9` lose.
"""

import contextlib
import fcntl
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# The columns of a click line, in order. The first five are read back when Redis flags repeats at
# flush time (several processes); the rest go to the store as they are. Columns not listed take the
# store's defaults, which are the defaults of `rows.event_row`.
CLICK_COLUMNS: tuple[str, ...] = (
    "link_id", "visitor_id", "is_bot", "bot_reason", "ts", "event_id", "user_id", "device", "user_agent",
    "ip", "event", "url", "referrer", "referrer_domain", "channel", "source", "medium", "campaign",
    "hop_depth", "sharer_id", "post_id", "deal_id", "origin",
)  # fmt: skip
CLICK_FIELDS = len(CLICK_COLUMNS)
EVENT_ID_FIELD = CLICK_COLUMNS.index("event_id")
SEGMENT_BYTES = 32 * 1024 * 1024

# The sink takes the lines of one or more segments (without their newlines) and whether they may
# already be in the store (segments adopted from a dead process).
LineSink = Callable[[list[bytes], bool], object]


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int  # held open, with the exclusive lock, until the segment is stored and deleted
    view: mmap.mmap | None = None  # the mapping of an own segment, None for an adopted one
    used: int = 0
    adopted: bool = False

    def lines(self) -> list[bytes]:
        """The complete lines; what follows the last newline (a line cut short) is dropped."""
        if self.view is not None:
            data = self.view[: self.used]
        else:
            with open(self.fd, "rb", closefd=False) as handle:
                data = handle.read()
            end = data.find(b"\0")  # the unwritten rest of the segment (lines never hold a NUL)
            if end >= 0:
                data = data[:end]
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            logger.warning("click spool: %s ends in an incomplete line; dropped", self.path.name)
        return data[:cut].split(b"\n")[:-1] if cut else []

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ClickSpool:
    """Segment files `clicks-<pid>-<ns>.tsv` under `directory`. Thread-safe."""

    def __init__(self, directory: Path, *, segment_bytes: int = SEGMENT_BYTES):
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._open_segment: _Segment | None = None
        self._view: mmap.mmap | None = None
        self._used = 0
        self._capacity = 0
        self._rows = 0  # lines in the open segment
        self._sealed: list[_Segment] = []
        self._memory: list[bytes] = []  # lines no segment could take
        self._retry_open_at = 0.0
        self.appended = 0
        self.stored = 0
        self.adopted = 0
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def append(self, line: str) -> int:
        """Write one click line (ending in a newline); returns the lines waiting in the open segment."""
        data = line.encode()
        with self._lock:
            self.appended += 1
            end = self._used + len(data)
            if end > self._capacity:
                if not self._open_locked(len(data)):
                    self._memory.append(data)
                    return len(self._memory)
                end = len(data)
            self._view[self._used : end] = data  # type: ignore[index]
            self._used = end
            self._rows += 1
            return self._rows

    def _open_locked(self, size: int) -> bool:
        self._seal_locked()
        now = time.monotonic()
        if size > self.segment_bytes or now < self._retry_open_at:
            return False
        path = self.directory / f"clicks-{os.getpid()}-{time.time_ns()}.tsv"
        fd = -1
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.posix_fallocate(fd, 0, self.segment_bytes)
            view = mmap.mmap(fd, self.segment_bytes)
        except OSError as exc:
            logger.error("click spool: cannot open a segment at %s (%s); keeping clicks in memory", path, exc)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    path.unlink()
                os.close(fd)
            self._retry_open_at = now + 1.0
            return False
        self._open_segment = _Segment(path, fd, view)
        self._view, self._used, self._capacity, self._rows = view, 0, self.segment_bytes, 0
        return True

    def _seal_locked(self) -> None:
        segment = self._open_segment
        if segment is not None:
            segment.used = self._used
            # Give back the unused part of the allocation: a store that is down for a while must not
            # leave a full-size segment on disk per flush.
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, self._used)
            self._sealed.append(segment)
        self._open_segment, self._view = None, None
        self._used = self._capacity = self._rows = 0

    def pending(self) -> int:
        """Lines appended by this process and not stored yet."""
        with self._lock:
            return self.appended - self.stored

    def drain(self, sink: LineSink, *, max_lines: int) -> int:
        """Seal the open segment and store every sealed segment (and any dead process's) in order.

        Returns the lines stored. If the sink raises, what was not stored stays for the next call.
        """
        with self._drain_lock:
            with self._lock:
                if self._rows:
                    self._seal_locked()
                segments = list(self._sealed)
                memory, self._memory = self._memory, []
            segments = self._adopt_orphans() + segments
            stored = 0
            try:
                if memory:
                    sink([line[:-1] for line in memory], False)
                    stored += len(memory)
                    with self._lock:
                        self.stored += len(memory)
                    memory = []
                batch: list[tuple[_Segment, int]] = []
                lines: list[bytes] = []
                for segment in segments:
                    read = segment.lines()
                    lines.extend(read)
                    batch.append((segment, len(read)))
                    if len(lines) >= max_lines:
                        stored += self._store(batch, lines, sink)
                        batch, lines = [], []
                if batch:
                    stored += self._store(batch, lines, sink)
            finally:
                if memory:
                    with self._lock:
                        self._memory[:0] = memory
                for segment in segments:  # adopted segments not stored: unlocked, to be adopted again
                    if segment.adopted:
                        segment.close()
            return stored

    def _store(self, batch: list[tuple[_Segment, int]], lines: list[bytes], sink: LineSink) -> int:
        if lines:
            sink(lines, any(segment.adopted for segment, _ in batch))
        for segment, count in batch:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            segment.close()
            with self._lock:
                if segment.adopted:
                    self.adopted += count
                else:
                    self.stored += count
                    self._sealed.remove(segment)
        return len(lines)

    def _adopt_orphans(self) -> list[_Segment]:
        """Segments of processes that died before storing them: nobody holds their lock."""
        if not self.directory.is_dir():
            return []
        with self._lock:
            mine = {segment.path for segment in self._sealed}
            if self._open_segment is not None:
                mine.add(self._open_segment.path)
        adopted = []
        for path in sorted(self.directory.glob("clicks-*.tsv"), key=_segment_order):
            if path in mine:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # its owner stored it meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # a live process owns it
                continue
            if not path.exists():  # stored and deleted by its owner while we took the lock
                os.close(fd)
                continue
            adopted.append(_Segment(path, fd, adopted=True))
        return adopted

    def _forget_after_fork(self) -> None:
        # A forked child must not write to or store its parent's segments.
        for segment in [self._open_segment, *self._sealed]:
            if segment is not None:
                with contextlib.suppress(OSError, ValueError):
                    segment.close()
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._open_segment, self._view = None, None
        self._used = self._capacity = self._rows = 0
        self._sealed, self._memory = [], []
        self.appended = self.stored = self.adopted = 0


def _segment_order(path: Path) -> tuple[int, str]:
    try:
        return int(path.stem.rsplit("-", 1)[-1]), path.name
    except ValueError:
        return 0, path.name
