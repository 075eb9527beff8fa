"""The click spool: clicks are on disk before their redirect is answered; a crash loses none."""

import mmap
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from weituan.tracking.services.ingest import click_lines_store
from weituan.tracking.spool import CLICK_FIELDS, ClickSpool
from weituan.tracking.store.base import StoreError
from weituan.tracking.tests.conftest import count

SCRIPT = Path(__file__).with_name("spool_crash_script.py")


def line(n: int, *, visitor: str = "") -> str:
    fields = [str(n % 7 + 1), visitor or f"spoolvisitor{n:05d}", "0", "", f"{1_760_000_000 + n}.250", f"spool-{n:08d}",
              "0", "mobile", "Mozilla/5.0", "198.51.100.0", "link_click", "https://weituan.example/d/1", "", "",
              "microblog", "weituan", "share", "", "0", "3", "1", "0", "click"]  # fmt: skip
    assert len(fields) == CLICK_FIELDS
    return "\t".join(fields) + "\n"


class Sink:
    def __init__(self, failures: int = 0):
        self.failures = failures
        self.calls: list[tuple[list[bytes], bool]] = []

    def __call__(self, lines: list[bytes], may_exist: bool) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unavailable")
        self.calls.append((list(lines), may_exist))


def test_lines_are_drained_in_order_and_segments_deleted(tmp_path: Path) -> None:
    spool = ClickSpool(tmp_path, segment_bytes=4096)  # a few lines per segment: several segments
    for n in range(100):
        spool.append(line(n))
    assert len(list(tmp_path.glob("clicks-*.tsv"))) > 3
    sink = Sink()
    assert spool.drain(sink, max_lines=1_000_000) == 100
    stored = [stored_line for lines, _ in sink.calls for stored_line in lines]
    assert stored == [line(n).rstrip("\n").encode() for n in range(100)]
    assert list(tmp_path.glob("clicks-*.tsv")) == []
    assert (spool.appended, spool.stored, spool.pending()) == (100, 100, 0)


def test_a_failed_store_keeps_the_segments_for_the_next_drain(tmp_path: Path) -> None:
    spool = ClickSpool(tmp_path)
    for n in range(10):
        spool.append(line(n))
    sink = Sink(failures=1)
    with pytest.raises(ConnectionError):
        spool.drain(sink, max_lines=1000)
    assert spool.pending() == 10 and len(list(tmp_path.glob("clicks-*.tsv"))) == 1
    spool.append(line(10))
    assert spool.drain(sink, max_lines=1000) == 11
    assert [len(lines) for lines, _ in sink.calls] == [11]
    assert spool.pending() == 0 and list(tmp_path.glob("clicks-*.tsv")) == []


def test_a_live_process_segments_are_not_adopted(tmp_path: Path) -> None:
    owner, other = ClickSpool(tmp_path), ClickSpool(tmp_path)
    owner.append(line(1))
    sink = Sink()
    assert other.drain(sink, max_lines=1000) == 0  # the owner holds its segment's lock
    assert owner.drain(sink, max_lines=1000) == 1


def test_a_line_cut_short_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "clicks-1-1.tsv"
    path.write_bytes(line(1).encode() + line(2).encode()[:30] + b"\0" * 100)
    sink = Sink()
    assert ClickSpool(tmp_path).drain(sink, max_lines=1000) == 1
    assert sink.calls == [([line(1).rstrip("\n").encode()], True)]


def crash(data_dir: Path, clicks: int) -> Path:
    """Record `clicks` in a server-like process that is then killed by SIGKILL; returns its spool dir."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL")}
    env.update(WEITUAN_DATA_DIR=str(data_dir), PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, str(SCRIPT), str(clicks)], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert int(done.stdout.strip()) == clicks
    return data_dir / "tracking-clicks"


@pytest.mark.parametrize("stored_before_crash", [0, 120])
def test_clicks_of_a_killed_process_are_stored_once_by_the_next(
    tmp_path: Path, store: Any, stored_before_crash: int
) -> None:
    spool_dir = crash(tmp_path, 300)
    (segment,) = spool_dir.glob("clicks-*.tsv")
    if stored_before_crash:  # the dead process had stored part of it but not yet deleted the segment
        first = segment.read_bytes().split(b"\n")[:stored_before_crash]
        click_lines_store(first)
        assert count("SELECT count() FROM events") == stored_before_crash
    assert ClickSpool(spool_dir).drain(click_lines_store, max_lines=100_000) == 300
    assert count("SELECT count() FROM events WHERE event = 'link_click' AND link_id = 77") == 300
    assert count("SELECT uniqExact(event_id) FROM events") == 300
    assert count("SELECT count() FROM events WHERE is_bot = 0 AND channel = 'microblog'") == 300
    assert list(spool_dir.glob("clicks-*.tsv")) == []


def test_malformed_lines_are_left_out(store: Any) -> None:
    assert click_lines_store([line(1).rstrip("\n").encode(), b"not\ta\tclick"]) == 1
    assert count("SELECT count() FROM events") == 1


def test_a_sealed_segment_keeps_only_its_lines_on_disk(tmp_path: Path) -> None:
    spool = ClickSpool(tmp_path)
    spool.append(line(1))
    (segment,) = tmp_path.glob("clicks-*.tsv")
    assert segment.stat().st_size == spool.segment_bytes  # allocated in full when opened
    with pytest.raises(ConnectionError):
        spool.drain(Sink(failures=1), max_lines=1000)
    assert segment.stat().st_size == len(line(1))


class TextSink:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int]] = []

    def __call__(self, text: bytes, lines: int) -> None:
        self.calls.append((text, lines))


def test_own_segments_go_to_the_text_sink_whole_and_adopted_ones_line_by_line(tmp_path: Path) -> None:
    (tmp_path / "clicks-1-1.tsv").write_bytes(line(0).encode() + b"\0" * 64)  # a dead process's
    spool = ClickSpool(tmp_path, segment_bytes=4096)
    for n in range(1, 30):
        spool.append(line(n))
    sink, text_sink = Sink(), TextSink()
    assert spool.drain(sink, max_lines=1000, text_sink=text_sink) == 30
    assert sink.calls == [([line(0).rstrip("\n").encode()], True)]
    assert len(text_sink.calls) > 1  # one call per segment, in order
    assert b"".join(text for text, _ in text_sink.calls) == "".join(line(n) for n in range(1, 30)).encode()
    assert [text.count(b"\n") for text, _ in text_sink.calls] == [lines for _, lines in text_sink.calls]
    assert (spool.appended, spool.stored, spool.pending(), spool.adopted) == (29, 29, 0, 1)


def test_a_click_holding_a_sealed_segment_writes_to_the_next_one(tmp_path: Path) -> None:
    spool = ClickSpool(tmp_path)
    spool.append(line(1))
    stale = spool.view  # what a click read just before the flusher sealed the segment
    assert stale is not None
    with spool._lock:
        spool._seal_locked()
    with pytest.raises(ValueError):
        stale.write(line(2).encode())  # a sealed segment takes no more lines...
    spool.append(line(2))  # ...so the click goes to a new segment
    sink = Sink()
    assert spool.drain(sink, max_lines=1000) == 2
    assert [stored for lines, _ in sink.calls for stored in lines] == [
        line(n).rstrip("\n").encode() for n in (1, 2)
    ]


def test_a_line_written_between_reading_the_position_and_sealing_is_kept(tmp_path: Path) -> None:
    spool = ClickSpool(tmp_path)
    spool.append(line(1))
    opened = spool.view
    assert opened is not None
    view: mmap.mmap = opened
    real_tell = view.tell

    class Racing:
        """The mapping as the sealer sees it, with a click writing right after it read the position."""

        def tell(self) -> int:
            position = real_tell()
            view.write(line(2).encode())
            return position

        def __getattr__(self, name: str) -> Any:
            return getattr(view, name)

        def __len__(self) -> int:
            return len(view)

    spool.view = Racing()  # type: ignore[assignment]
    with spool._lock:
        spool._seal_locked()
    sink = Sink()
    assert spool.drain(sink, max_lines=1000) == 2
    assert [stored for lines, _ in sink.calls for stored in lines] == [
        line(n).rstrip("\n").encode() for n in (1, 2)
    ]


def test_appends_from_many_threads_while_draining_lose_and_repeat_no_line(tmp_path: Path) -> None:
    import threading

    spool = ClickSpool(tmp_path, segment_bytes=64 * 1024)  # many segments fill up during the run
    sink, text_sink = Sink(), TextSink()
    writers, per_writer = 4, 3000
    done = threading.Event()

    def write(first: int) -> None:
        for n in range(first, first + per_writer):
            spool.append(line(n))

    def drain() -> None:
        while not done.is_set():
            spool.drain(sink, max_lines=1000, text_sink=text_sink)

    threads = [threading.Thread(target=write, args=(w * per_writer,)) for w in range(writers)]
    drainer = threading.Thread(target=drain)
    drainer.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    drainer.join()
    spool.drain(sink, max_lines=1000, text_sink=text_sink)
    stored = b"".join(text for text, _ in text_sink.calls).split(b"\n")[:-1]
    stored += [stored_line for lines, _ in sink.calls for stored_line in lines]
    assert sorted(stored) == sorted(line(n).rstrip("\n").encode() for n in range(writers * per_writer))
    assert (spool.appended, spool.stored, spool.pending()) == (writers * per_writer, writers * per_writer, 0)
    assert list(tmp_path.glob("clicks-*.tsv")) == []


def test_a_segment_being_opened_is_never_taken_for_a_dead_process_one(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A flush looking for dead processes' segments while a click opens a new one (another process's,
    or this process's flusher) must not take the new one: it would store and delete a live segment,
    and in this process the flusher and the click would each wait on the other's lock for ever."""
    import fcntl

    from weituan.tracking import spool as spool_module

    spool, other = ClickSpool(tmp_path, segment_bytes=64 * 1024), ClickSpool(tmp_path)
    taken: list[list[Path]] = []
    real_flock = fcntl.flock

    def flock(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX and not taken:  # the click locking the segment it made
            found = other._adopt_orphans()  # what a flush running now would take
            taken.append([segment.path for segment in found])
            for segment in found:
                segment.close()
        real_flock(fd, operation)

    monkeypatch.setattr(spool_module.fcntl, "flock", flock)
    spool.append(line(1))
    monkeypatch.undo()
    assert taken == [[]]
    spool.append(line(2))
    sink, text_sink = Sink(), TextSink()
    assert other.drain(sink, max_lines=1000, text_sink=text_sink) == 0  # a live process's segment
    assert spool.drain(sink, max_lines=1000, text_sink=text_sink) == 2
    assert b"".join(text for text, _ in text_sink.calls) == (line(1) + line(2)).encode()


def test_a_segment_a_process_died_while_opening_is_removed_and_one_being_opened_kept(tmp_path: Path) -> None:
    import fcntl

    from weituan.tracking.spool import OPENING_ABANDONED_AFTER, OPENING_PREFIX

    long_ago = time.time() - OPENING_ABANDONED_AFTER - 1
    abandoned, locked, just_made = (tmp_path / f"{OPENING_PREFIX}clicks-{n}-{n}.tsv" for n in (1, 2, 3))
    for path in (abandoned, locked, just_made):
        path.write_bytes(b"\0" * 1024)
    for path in (abandoned, locked):
        os.utime(path, (long_ago, long_ago))
    fd = os.open(locked, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # its maker is alive and at work
        assert ClickSpool(tmp_path).drain(Sink(), max_lines=1000, text_sink=TextSink()) == 0
        assert (abandoned.exists(), locked.exists(), just_made.exists()) == (False, True, True)
    finally:
        os.close(fd)


class SegmentSink:
    """Takes segments by name as the store does (reads and counts them); or declines them all."""

    def __init__(self, *, declines: bool = False) -> None:
        self.declines = declines
        self.calls: list[list[bytes]] = []

    def __call__(self, segments: list[tuple[Path, int]]) -> list[int] | None:
        if self.declines:
            return None
        texts = [path.read_bytes()[:used] for path, used in segments]
        self.calls.append(texts)
        return [text.count(b"\n") for text in texts]


def test_full_segments_say_so_and_the_write_buffer_stores_them_together_at_once(tmp_path: Path) -> None:
    import time

    from weituan.tracking.buffer import WriteBuffer
    from weituan.tracking.spool import APPENDED, FULL, OPENED

    spool = ClickSpool(tmp_path, segment_bytes=len(line(0)) * 3, segments_per_insert=2)
    # The fourth click opens a second segment (one full: not yet), the seventh a third (two full).
    assert [spool.append(line(n)) for n in range(7)] == [
        OPENED,
        *[APPENDED] * 2,
        OPENED,
        *[APPENDED] * 2,
        FULL,
    ]
    segment_sink = SegmentSink()
    buffer = WriteBuffer(
        lambda rows: None,
        interval=3600,
        spill_dir=None,
        clicks=ClickSpool(tmp_path / "buffer", segment_bytes=len(line(0)) * 3, segments_per_insert=2),
        click_sink=Sink(),
        click_text_sink=TextSink(),
        click_segment_sink=segment_sink,
    )
    try:
        for n in range(6):
            buffer.add_click(line(n))
        time.sleep(0.2)
        assert segment_sink.calls == []  # one full segment does not wake the flusher
        buffer.add_click(line(6))
        deadline = time.monotonic() + 10
        while len(segment_sink.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Long before the interval: the two full segments in one insert, then the open one, sealed.
        assert [len(texts) for texts in segment_sink.calls] == [2, 1]
        assert (
            b"".join(b"".join(texts) for texts in segment_sink.calls) == "".join(map(line, range(7))).encode()
        )
        assert buffer.stats().stored == 7
    finally:
        buffer.stop()


def test_own_segments_go_to_the_segment_sink_together_and_by_text_when_it_declines(tmp_path: Path) -> None:
    (tmp_path / "clicks-1-1.tsv").write_bytes(line(0).encode() + b"\0" * 64)  # a dead process's
    spool = ClickSpool(tmp_path, segment_bytes=len(line(0)) * 2, segments_per_insert=3)
    for n in range(1, 15):  # seven segments of two lines
        spool.append(line(n))
    sink, text_sink, segment_sink = Sink(), TextSink(), SegmentSink()
    assert spool.drain(sink, max_lines=1000, text_sink=text_sink, segment_sink=segment_sink) == 15
    assert sink.calls == [([line(0).rstrip("\n").encode()], True)]  # the dead process's first
    assert [len(texts) for texts in segment_sink.calls] == [3, 3, 1]
    assert (
        b"".join(b"".join(texts) for texts in segment_sink.calls) == "".join(map(line, range(1, 15))).encode()
    )
    assert text_sink.calls == []
    assert list(tmp_path.glob("clicks-*.tsv")) == []
    assert (spool.appended, spool.stored, spool.pending(), spool.adopted) == (14, 14, 0, 1)

    for n in range(15, 20):
        spool.append(line(n))
    declining = SegmentSink(declines=True)
    assert spool.drain(sink, max_lines=1000, text_sink=text_sink, segment_sink=declining) == 5
    assert [lines for _, lines in text_sink.calls] == [2, 2, 1]  # one by one, by text
    assert b"".join(text for text, _ in text_sink.calls) == "".join(map(line, range(15, 20))).encode()
    assert (spool.appended, spool.stored, spool.pending()) == (19, 19, 0)


def test_the_lines_waiting_can_be_counted_while_a_drain_closes_the_segments_it_stored(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Another thread counting the lines waiting (the write buffer's stats) at any moment of a drain
    never meets a segment already closed but still listed as waiting."""
    from weituan.tracking import spool as spool_module

    spool = ClickSpool(tmp_path, segment_bytes=len(line(0)) * 2, segments_per_insert=2)
    for n in range(6):  # three segments of two lines
        spool.append(line(n))
    seen: list[int] = []
    close = spool_module._Segment.close

    def close_then_count(segment: Any) -> None:
        close(segment)
        seen.append(spool.pending())  # what another thread may ask right after

    monkeypatch.setattr(spool_module._Segment, "close", close_then_count)
    assert spool.drain(Sink(), max_lines=1000, text_sink=TextSink(), segment_sink=SegmentSink()) == 6
    assert seen == [4, 2, 0]
    assert (spool.appended, spool.stored, spool.pending()) == (6, 6, 0)


def test_segments_are_stored_by_name_in_one_insert_and_every_click_is_seen(
    store: Any, tmp_path: Path, settings: Any
) -> None:
    from weituan.tracking.services.ingest import click_segments_store

    settings.REDIS_URL = ""  # one serving process: repeats were flagged as the clicks came in
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_bytes("".join(map(line, range(3))).encode() + b"\0" * 32)  # unused room after the lines
    second.write_bytes("".join(map(line, range(3, 5))).encode())
    assert click_segments_store([(first, len(line(0)) * 3), (second, second.stat().st_size)]) == [3, 2]
    assert count("SELECT count() FROM events WHERE event = 'link_click'") == 5
    assert count("SELECT uniqExact(event_id) FROM events WHERE origin = 'click'") == 5
    # A segment that is not whole click lines: nothing of either is stored, the caller goes one by one.
    bad = tmp_path / "c.tsv"
    bad.write_bytes((line(5) + "not\ta\tclick\n").encode())
    assert click_segments_store([(first, len(line(0)) * 3), (bad, bad.stat().st_size)]) is None
    cut = tmp_path / "d.tsv"
    cut.write_bytes((line(6) + line(7)[:40]).encode())  # text after the last newline
    assert click_segments_store([(cut, cut.stat().st_size)]) is None
    assert count("SELECT count() FROM events") == 5


def test_with_redis_segments_go_one_by_one_so_repeats_are_flagged(
    store: Any, tmp_path: Path, settings: Any
) -> None:
    from weituan.tracking.services.ingest import click_segments_store

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"  # never reached: the answer comes first
    segment = tmp_path / "a.tsv"
    segment.write_bytes("".join(map(line, range(3))).encode())
    assert click_segments_store([(segment, segment.stat().st_size)]) is None
    assert count("SELECT count() FROM events") == 0


def test_the_store_process_reads_segment_files_itself(tmp_path: Path) -> None:
    from weituan.tracking.store.chdb_process import ChdbProcessStore

    (tmp_path / "a.tsv").write_bytes(b"1\tone\n2\ttwo\n")
    (tmp_path / "b.tsv").write_bytes(b"3\tthree\n\0\0")
    (tmp_path / "c.tsv").write_bytes(b"4\tfour\tfive\n")
    store = ChdbProcessStore(tmp_path / "chdb")
    try:
        store.execute("CREATE TABLE t (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
        files = [
            (str(tmp_path / "a.tsv"), len(b"1\tone\n2\ttwo\n")),
            (str(tmp_path / "b.tsv"), len(b"3\tthree\n")),
        ]
        assert store.insert_tsv_files("t", ("n", "s"), files) == [2, 1]
        assert store.query("SELECT n, s FROM t ORDER BY n") == [
            {"n": 1, "s": "one"},
            {"n": 2, "s": "two"},
            {"n": 3, "s": "three"},
        ]
        assert (
            store.insert_tsv_files(
                "t", ("n", "s"), [*files, (str(tmp_path / "c.tsv"), len(b"4\tfour\tfive\n"))]
            )
            is None
        )
        assert store.scalar("SELECT count() FROM t") == 3  # nothing of the refused batch
        with pytest.raises(StoreError, match="No such file"):
            store.insert_tsv_files("t", ("n", "s"), [(str(tmp_path / "gone.tsv"), 10)])
    finally:
        store.close()


def test_a_whole_segment_with_a_bad_line_is_stored_line_by_line(store: Any) -> None:
    from weituan.tracking.services.ingest import click_text_store

    text = (line(1) + "not\ta\tclick\n" + line(2)).encode()
    assert click_text_store(text, 3) == 2
    assert count("SELECT count() FROM events") == 2
    assert click_text_store((line(3) + line(4)).encode(), 2) == 2
    assert count("SELECT count() FROM events") == 4


# The child only takes two ids and writes them to a pipe: no lock another thread could hold.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_event_ids_are_one_sequence_and_a_forked_child_has_its_own() -> None:
    from weituan.tracking import rows

    rows.event_ids_bytes.clear()
    first, second = rows.new_event_id(), rows.event_id_next()
    third, fourth = rows.event_id_bytes_next().decode(), rows.new_event_id()
    fifth = rows.event_ids_bytes_refill().decode()  # the block of the /s/ fast path: drawn ahead
    block = [rows.event_ids_bytes.popleft().decode() for _ in range(len(rows.event_ids_bytes))]
    ids = (first, second, third, fourth)
    assert len(set(ids)) == 4 and len({x[:16] for x in ids}) == 1 and {len(x) for x in ids} == {32}
    assert [int(x[16:], 16) for x in ids] == [int(first[16:], 16) + n for n in range(4)]
    assert {len(x) for x in [fifth, *block]} == {32} and len({fifth, *block, *ids}) == 5 + len(block)
    assert sorted(int(x[16:], 16) for x in [fifth, *block]) == [
        int(first[16:], 16) + n for n in range(4, 5 + len(block))
    ]
    rows.event_ids_bytes_refill()  # the parent holds a block at the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: every way of taking an id uses the child's prefix
        from_block = rows.event_ids_bytes.popleft() if rows.event_ids_bytes else rows.event_ids_bytes_refill()
        taken = (
            f"{rows.event_id_next()} {rows.new_event_id()} {rows.event_id_bytes_next().decode()} "
            f"{from_block.decode()}"
        )
        os.write(write, taken.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child_ids = pipe.read().split()
    assert len(child_ids) == 4 and {x[:16] for x in child_ids} != {first[:16]}
    assert len({x[:16] for x in child_ids}) == 1
