"""The click spool: every click is written to a local segment file before its redirect is answered.

A click line is already the TabSeparated text of its `events` row (columns in `CLICK_COLUMNS`), so
the redirect's only storage work is one `mmap.write` into a memory-mapped segment file (no system
call and no lock per click), and the flusher inserts whole segments with next to no Python work.
The flusher seals the open segment (the next click opens a new one), inserts the sealed segments in
order, up to `SEGMENTS_PER_INSERT` of them in one insert, and deletes each once the store has taken
it. The store reads the segment files itself (see `AnalyticsStore.insert_tsv_files`): the serving
process hands over their names, not their text. Segments are allocated on disk in full when opened,
so a full disk is noticed then, not in the middle of a click.

Appending takes no lock: `mmap.write` checks the room left, copies the line and moves the write
position in one call made under the interpreter lock, so lines never interleave. Sealing moves the
position to the end of the mapping, after which a write to it fails and the click takes the locked
path to the next segment; a line that a click wrote before that is found by looking for the first
NUL byte (lines never hold one, and the rest of a fresh segment is zeros).

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
SEGMENT_BYTES = 16 * 1024 * 1024  # ~50,000 clicks
# Full segments stored in one insert, and how many wake the flusher before its interval is over.
# Every insert makes a part that the store merges later: four segments per part (~200,000 clicks)
# cost the store about half the CPU per click of one segment per part, with a bounded insert size.
SEGMENTS_PER_INSERT = 4

# What `ClickSpool.append` did besides writing the line.
APPENDED = 0  # nothing else
OPENED = 1  # it opened a segment (the first click since the last flush)
FULL = 2  # SEGMENTS_PER_INSERT full segments (or as many lines kept in memory) wait to be stored
MEMORY_LINES_WAKE = 50_000

# A segment file's name while its process makes and locks it (see `ClickSpool._open_locked`).
OPENING_PREFIX = "opening-"
OPENING_ABANDONED_AFTER = 60.0  # seconds

# The sink takes the lines of one or more segments (without their newlines) and whether they may
# already be in the store (segments adopted from a dead process).
LineSink = Callable[[list[bytes], bool], object]
# A text sink takes the whole text of one of this process's own segments (complete lines, each ending
# in a newline) and its number of lines: the flusher then does no work per line.
TextSink = Callable[[bytes, int], object]
# A segment sink stores several of this process's own sealed segments, given as (path, bytes used),
# in one insert, and returns each one's number of lines; or None, having stored nothing, when they
# must go to the text sink one by one.
SegmentSink = Callable[[list[tuple[Path, int]]], list[int] | None]


@dataclass(eq=False)
class _Segment:
    path: Path
    fd: int  # held open, with the exclusive lock, until the segment is stored and deleted
    view: mmap.mmap | None = None  # the mapping of an own segment, None for an adopted one
    used: int = 0
    adopted: bool = False
    _lines: list[bytes] | None = None
    _count: int = -1

    def text(self) -> bytes:
        """The lines of an own sealed segment as written: it ends at the end of its last line."""
        assert self.view is not None, "an adopted segment is read by lines()"
        return self.view[: self.used]

    def count(self) -> int:
        """Its number of lines (read once)."""
        if self._count < 0:
            self._count = len(self._lines) if self._lines is not None else self.text().count(b"\n")
        return self._count

    def lines(self) -> list[bytes]:
        """The complete lines (read once); what follows the last newline (a line cut short) is dropped."""
        if self._lines is not None:
            return self._lines
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
        self._lines = data[:cut].split(b"\n")[:-1] if cut else []
        return self._lines

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
            self.view = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ClickSpool:
    """Segment files `clicks-<pid>-<ns>.tsv` under `directory`. Thread-safe."""

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = SEGMENT_BYTES,
        segments_per_insert: int = SEGMENTS_PER_INSERT,
    ):
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.segments_per_insert = segments_per_insert
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._open_segment: _Segment | None = None
        # The open segment's mapping, set last when one opens. The /s/ fast path writes a line to it
        # itself, as `append_bytes` does, and calls `append_bytes` when that write fails.
        self.view: mmap.mmap | None = None
        self._sealed: list[_Segment] = []
        self._memory: list[bytes] = []  # lines no segment could take
        self._memory_storing = 0  # lines taken from `_memory` by a drain that has not stored them yet
        self._retry_open_at = 0.0
        self.stored = 0
        self.adopted = 0
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def append(self, line: str) -> int:
        """Write one click line (ending in a newline): in the page cache when this returns.

        Returns APPENDED, or OPENED / FULL when it had to open a segment (see those constants).
        """
        return self.append_bytes(line.encode())

    def append_bytes(self, data: bytes) -> int:
        """As `append`, for a line already encoded as UTF-8."""
        view = self.view
        if view is not None:
            try:
                view.write(data)
                return APPENDED
            except ValueError:  # the segment is full, sealed or closed: the locked path
                pass
        return self._append_locked(data)

    def _append_locked(self, data: bytes) -> int:
        with self._lock:
            view = self.view
            if view is not None:
                try:
                    view.write(data)
                    return APPENDED
                except ValueError:
                    pass
            full = view is not None  # the open segment had no room left
            if not self._open_locked(len(data)):
                self._memory.append(data)
                return FULL if len(self._memory) % MEMORY_LINES_WAKE == 0 else OPENED
            self.view.write(data)  # type: ignore[union-attr]
            return FULL if full and len(self._sealed) >= self.segments_per_insert else OPENED

    def _open_locked(self, size: int) -> bool:
        self._seal_locked()
        now = time.monotonic()
        if size > self.segment_bytes or now < self._retry_open_at:
            return False
        path = self.directory / f"clicks-{os.getpid()}-{time.time_ns()}.tsv"
        # Made under another name and given its own once locked: a segment is never seen by its name
        # without its owner's lock, which would make it a dead process's to adopt, store and delete.
        opening = self.directory / (OPENING_PREFIX + path.name)
        fd = -1
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(opening, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.posix_fallocate(fd, 0, self.segment_bytes)
            view = mmap.mmap(fd, self.segment_bytes)
            os.rename(opening, path)
        except OSError as exc:
            logger.error("click spool: cannot open a segment at %s (%s); keeping clicks in memory", path, exc)
            if fd >= 0:
                for made in (opening, path):
                    with contextlib.suppress(OSError):
                        made.unlink()
                os.close(fd)
            self._retry_open_at = now + 1.0
            return False
        self._open_segment = _Segment(path, fd, view)
        self.view = view
        return True

    def _seal_locked(self) -> None:
        segment, view = self._open_segment, self.view
        self._open_segment, self.view = None, None
        if segment is None or view is None:
            return
        end = view.tell()
        view.seek(0, os.SEEK_END)  # from now on a write to this segment fails (see the module docstring)
        used = view.find(b"\0", end)  # a click may have written a line between tell() and seek()
        segment.used = len(view) if used < 0 else used
        # Give back the unused part of the allocation: a store that is down for a while must not
        # leave a full-size segment on disk per flush.
        with contextlib.suppress(OSError):
            os.ftruncate(segment.fd, segment.used)
        self._sealed.append(segment)

    @property
    def appended(self) -> int:
        """Lines appended by this process so far (stored, or still waiting)."""
        with self._lock:
            return self.stored + self._waiting_locked()

    def pending(self) -> int:
        """Lines appended by this process and not stored yet."""
        with self._lock:
            return self._waiting_locked()

    def _waiting_locked(self) -> int:
        waiting = len(self._memory) + self._memory_storing + sum(s.count() for s in self._sealed)
        view = self.view
        if view is not None:
            waiting += view[: view.tell()].count(b"\n")
        return waiting

    def drain(
        self,
        sink: LineSink,
        *,
        max_lines: int,
        text_sink: TextSink | None = None,
        segment_sink: SegmentSink | None = None,
    ) -> int:
        """Seal the open segment and store every sealed segment (and any dead process's) in order.

        With `text_sink`, this process's own segments go to it whole: with `segment_sink` too, up to
        `segments_per_insert` of them at a time by name, and one by one by text when it declines.
        The rest (segments of dead processes, lines kept in memory) go to `sink`. Returns the lines
        stored. If a sink raises, what was not stored stays for the next call.
        """
        with self._drain_lock:
            with self._lock:
                if self.view is not None and self.view.tell():
                    self._seal_locked()
                segments = list(self._sealed)
                memory, self._memory = self._memory, []
                self._memory_storing = len(memory)
            segments = self._adopt_orphans() + segments
            stored = 0
            try:
                if memory:
                    sink([line[:-1] for line in memory], False)
                    stored += len(memory)
                    with self._lock:
                        self.stored += len(memory)
                        self._memory_storing = 0
                    memory = []
                batch: list[tuple[_Segment, int]] = []
                lines: list[bytes] = []
                own: list[_Segment] = []  # consecutive own segments, stored together
                for segment in segments:
                    if text_sink is not None and not segment.adopted:
                        if batch:  # the adopted segments before it first, to keep the order
                            stored += self._store(batch, lines, sink)
                            batch, lines = [], []
                        own.append(segment)
                        if len(own) >= self.segments_per_insert:
                            stored += self._store_own(own, text_sink, segment_sink)
                            own = []
                        continue
                    if own:
                        stored += self._store_own(own, text_sink, segment_sink)
                        own = []
                    read = segment.lines()
                    lines.extend(read)
                    batch.append((segment, len(read)))
                    if len(lines) >= max_lines:
                        stored += self._store(batch, lines, sink)
                        batch, lines = [], []
                if batch:
                    stored += self._store(batch, lines, sink)
                if own:
                    stored += self._store_own(own, text_sink, segment_sink)
            finally:
                if memory:
                    with self._lock:
                        self._memory[:0] = memory
                        self._memory_storing = 0
                for segment in segments:  # adopted segments not stored: unlocked, to be adopted again
                    if segment.adopted:
                        segment.close()
            return stored

    def _store_own(
        self, own: list[_Segment], text_sink: TextSink | None, segment_sink: SegmentSink | None
    ) -> int:
        """Store own sealed segments: by name in one insert, or else one by one by text."""
        assert text_sink is not None, "own segments are gathered only for a text sink"
        counts = segment_sink([(segment.path, segment.used) for segment in own]) if segment_sink else None
        if counts is not None:
            return self._stored(list(zip(own, counts, strict=True)))
        stored = 0
        for segment in own:
            text = segment.text()
            count = text.count(b"\n")
            if count:
                text_sink(text, count)
            stored += self._stored([(segment, count)])
        return stored

    def _store(self, batch: list[tuple[_Segment, int]], lines: list[bytes], sink: LineSink) -> int:
        if lines:
            sink(lines, any(segment.adopted for segment, _ in batch))
        self._stored(batch)
        return len(lines)

    def _stored(self, batch: list[tuple[_Segment, int]]) -> int:
        """Delete segments the store has taken, and count their lines. A segment leaves the sealed list
        (and its lines move to `stored`) under the lock before it is closed: a count of the lines waiting
        (`pending`, `appended`), taken under the lock, reads every sealed segment's mapping."""
        for segment, count in batch:
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            with self._lock:
                if segment.adopted:
                    self.adopted += count
                else:
                    self.stored += count
                    self._sealed.remove(segment)
            segment.close()
        return sum(count for _, count in batch)

    def _adopt_orphans(self) -> list[_Segment]:
        """Segments of processes that died before storing them: nobody holds their lock."""
        if not self.directory.is_dir():
            return []
        with self._lock:
            mine = {segment.path for segment in self._sealed}
            if self._open_segment is not None:
                mine.add(self._open_segment.path)
        for path in self.directory.glob(OPENING_PREFIX + "clicks-*.tsv"):
            _opening_abandoned_remove(path)
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
        self._open_segment, self.view = None, None
        self._sealed, self._memory = [], []
        self._memory_storing = self.stored = self.adopted = 0


def _opening_abandoned_remove(path: Path) -> None:
    """Delete a segment a process died while opening: nobody holds its lock, and it was made longer
    ago than any opening takes (until its maker locks it, a segment being opened is unlocked too). No
    click was written to it: a segment takes clicks only once it has its own name."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if time.time() - os.fstat(fd).st_mtime < OPENING_ABANDONED_AFTER:
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # being opened by a live process
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    finally:
        os.close(fd)


def _segment_order(path: Path) -> tuple[int, str]:
    try:
        return int(path.stem.rsplit("-", 1)[-1]), path.name
    except ValueError:
        return 0, path.name
