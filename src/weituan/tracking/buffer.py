"""The in-process write buffer for high-volume events (clicks, page views, impressions), as Plausible does.

Requests append a row and return at once; a flusher thread writes batches to the analytics store
when `max_rows` are waiting (for clicks: when `spool.SEGMENTS_PER_INSERT` spool segments, about four
times as many clicks, are full) or every `interval` seconds (5 s: each insert has a large fixed cost,
and fewer, larger parts leave the store less merging to do). So an event is in the store, and seen
by every query, at most `interval` seconds (plus the insert's own time) after it was accepted, while
the store takes inserts.

Clicks are appended to the click spool (see `spool`) before their redirect is answered, so a crash
loses none, and this process's segments go to the store whole, several per insert and read by the
store from their files (see `ingest.click_segments_store`);
other rows wait in memory. Nothing is dropped: a failed batch stays at the head of the
queue and is retried; at process exit the buffer is flushed, and rows that still cannot be stored
are spilled to a file under the data dir and replayed by the next process (a `kill -9` loses the
rows in memory, up to `interval` seconds of page views and impressions, but no click).
"""

import atexit
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from weituan.tracking.spool import FULL, ClickSpool, LineSink, SegmentSink, TextSink

logger = logging.getLogger(__name__)

Sink = Callable[[list[dict[str, Any]]], None]


@dataclass(frozen=True)
class BufferStats:
    accepted: int
    stored: int
    pending: int
    failed_flushes: int
    spilled: int


class WriteBuffer:
    """Thread-safe. `add` never blocks on the store; `flush` writes everything waiting now."""

    def __init__(
        self,
        sink: Sink,
        *,
        max_rows: int = 50_000,
        interval: float = 5.0,
        spill_dir: Path | None,
        background: bool = True,
        clicks: ClickSpool | None = None,
        click_sink: LineSink | None = None,
        click_text_sink: TextSink | None = None,
        click_segment_sink: SegmentSink | None = None,
    ):
        self._sink = sink
        self.clicks = clicks
        self._click_sink = click_sink
        self._click_text_sink = click_text_sink
        self._click_segment_sink = click_segment_sink
        self.background = background  # False: no flusher thread, only explicit flush()/stop()
        self.max_rows = max_rows
        self.interval = interval
        self.spill_dir = spill_dir
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._clicks_full = False  # a full spool segment waits: flush without waiting for the interval
        self.accepted = 0
        self.stored = 0
        self.failed_flushes = 0
        self.spilled = 0

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(row)
            self.accepted += 1
            if len(self._pending) >= self.max_rows:
                self._wake.notify()
            if self._thread is None and self.background:
                self._start()

    def add_click(self, line: str) -> None:
        """Append a click line (see `spool.CLICK_COLUMNS`) to the click spool: on disk before this returns.

        The flusher wakes when `spool.SEGMENTS_PER_INSERT` spool segments are full or after `interval`.
        """
        assert self.clicks is not None, "this buffer has no click spool"
        opened = self.clicks.append(line)
        if opened:
            self.clicks_opened(opened)

    def clicks_opened(self, opened: int) -> None:
        """After `clicks.append` opened a segment (a few times per flush): start or wake the flusher."""
        with self._lock:
            if opened == FULL:
                self._clicks_full = True
                self._wake.notify()
            if self._thread is None and self.background:
                self._start()

    def add_many(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending.extend(rows)
            self.accepted += len(rows)
            if len(self._pending) >= self.max_rows:
                self._wake.notify()
            if self._thread is None and self.background:
                self._start()

    def _start(self) -> None:
        # Called with the lock held.
        self._replay_spill()
        self._thread = threading.Thread(target=self._run, name="weituan-tracking-buffer", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._stopping and len(self._pending) < self.max_rows and not self._clicks_full:
                    self._wake.wait(self.interval)
                if self._stopping:
                    return
                self._clicks_full = False
            try:
                self.flush()
            except Exception:
                logger.exception("tracking write buffer: flush failed, will retry")
                time.sleep(min(5.0, self.interval * 4))

    def flush(self) -> int:
        """Write everything waiting now; returns rows stored. Raises if the store refused the batch."""
        with self._flush_lock:
            stored = 0
            while True:
                with self._lock:
                    batch = self._pending[: self.max_rows * 4]
                    del self._pending[: len(batch)]
                if not batch:
                    break
                try:
                    self._sink(batch)
                except Exception:
                    with self._lock:
                        self._pending[:0] = batch  # back to the head: order kept, nothing lost
                        self.failed_flushes += 1
                    raise
                with self._lock:
                    self.stored += len(batch)
                stored += len(batch)
            if self.clicks is not None and self._click_sink is not None:
                try:
                    stored += self.clicks.drain(
                        self._click_sink,
                        max_lines=self.max_rows * 4,
                        text_sink=self._click_text_sink,
                        segment_sink=self._click_segment_sink,
                    )
                except Exception:
                    with self._lock:
                        self.failed_flushes += 1
                    raise
            return stored

    def stats(self) -> BufferStats:
        clicks = self.clicks
        appended, clicks_stored = (clicks.appended, clicks.stored) if clicks is not None else (0, 0)
        with self._lock:
            return BufferStats(
                self.accepted + appended,
                self.stored + clicks_stored,
                len(self._pending) + appended - clicks_stored,
                self.failed_flushes,
                self.spilled,
            )

    def stop(self) -> None:
        """Flush and stop the flusher (at exit). Rows the store will not take are spilled to disk.

        Clicks the store will not take stay in their spool segments, which the next process adopts.
        """
        with self._lock:
            if self._thread is None:
                self._replay_spill()
            self._stopping = True
            self._wake.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            logger.exception("tracking write buffer: final flush failed; spilling to disk")
            self._spill()
        with self._lock:
            self._thread = None
            self._stopping = False

    def _spill(self) -> None:
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows or self.spill_dir is None:
            return
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"spill-{time.time_ns()}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, default=_json_default) + "\n")
        self.spilled += len(rows)

    def _replay_spill(self) -> None:
        if self.spill_dir is None or not self.spill_dir.exists():
            return
        for path in sorted(self.spill_dir.glob("spill-*.jsonl")):
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line)
                    row["ts"] = datetime.fromisoformat(row["ts"])
                    self._pending.append(row)
            path.unlink()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spill {type(value).__name__}")


_buffer: WriteBuffer | None = None
_buffer_lock = threading.Lock()


def write_buffer() -> WriteBuffer:
    """The process-wide buffer: rows go through `ingest.events_store`, clicks through `ingest.click_lines_store`."""
    global _buffer
    if _buffer is None:
        with _buffer_lock:
            if _buffer is None:
                from weituan.tracking.services.ingest import (
                    click_lines_store,
                    click_segments_store,
                    click_text_store,
                    events_store,
                )

                def sink(rows: list[dict[str, Any]]) -> None:
                    events_store(rows)

                _buffer = WriteBuffer(
                    sink,
                    spill_dir=Path(settings.DATA_DIR) / "tracking-spill",
                    clicks=ClickSpool(Path(settings.DATA_DIR) / "tracking-clicks"),
                    click_sink=click_lines_store,
                    click_text_sink=click_text_store,
                    click_segment_sink=click_segments_store,
                )
    return _buffer
