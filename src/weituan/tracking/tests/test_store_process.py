"""The shared store process: every process of a data directory reaches one embedded store."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weituan.tracking.store.base import StoreError
from weituan.tracking.store.chdb_process import ChdbProcessStore, store_address

SRC = str(Path(__file__).resolve().parents[3])

# A process of its own that writes rows through the store process and prints the pid it talked to.
WRITER = """
import sys
from weituan.tracking.store.chdb_process import ChdbProcessStore
store = ChdbProcessStore(sys.argv[1], idle_exit=float(sys.argv[4]))
first, count = int(sys.argv[2]), int(sys.argv[3])
for n in range(first, first + count, 100):
    store.insert("t", ("n", "s"), [(m, "行%d" % m) for m in range(n, min(n + 100, first + count))])
print(store.pid)
store.close()
"""

# A process that opens the store's files itself, outside the shared scheme, until its stdin closes.
HOLDER = """
import sys
from weituan.tracking.store.chdb_store import ChdbStore
store = ChdbStore(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
store.close()
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC}


def _gone(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # Our own child (this process started it) stays a zombie until reaped.
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.05)
    return False


def test_connections_share_one_store_process_and_see_each_others_writes(tmp_path: Path) -> None:
    first = ChdbProcessStore(tmp_path / "chdb")
    second = ChdbProcessStore(tmp_path / ".." / tmp_path.name / "chdb")  # the same files, named otherwise
    try:
        assert first.pid is not None and first.pid == second.pid
        first.execute("CREATE TABLE t (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
        second.insert("t", ("n", "s"), [(1, "一"), (2, "tab\there")])
        assert first.query("SELECT n, s FROM t ORDER BY n") == [
            {"n": 1, "s": "一"},
            {"n": 2, "s": "tab\there"},
        ]
        with pytest.raises(StoreError, match="UNKNOWN_TABLE"):
            second.query("SELECT * FROM no_such_table")
        assert first.scalar("SELECT count() FROM t") == 2  # an error on one connection spoils nothing
    finally:
        first.close()
        second.close()


def test_several_processes_write_at_once_through_one_store_process(tmp_path: Path) -> None:
    path = tmp_path / "chdb"
    setup = ChdbProcessStore(path, idle_exit=0.2)
    setup.execute("CREATE TABLE t (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
    setup.close()  # no process connected now: whichever writer comes first may have to start it again
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(k * 1000), "1000", "0.2"],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    pids = set()
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        pids.add(int(out))
    check = ChdbProcessStore(path)
    try:
        assert check.scalar("SELECT count() FROM t") == 4000
        assert check.scalar("SELECT uniqExact(n) FROM t") == 4000
        assert check.scalar("SELECT s FROM t WHERE n = 3999") == "行3999"
    finally:
        check.close()
    # Writers that overlapped shared a store process; never were two open on the files at once (the
    # second would have failed to open them, and its writer with it).
    assert 1 <= len(pids) <= 4


def test_the_store_process_ends_when_idle_and_the_next_user_starts_another(tmp_path: Path) -> None:
    store = ChdbProcessStore(tmp_path / "chdb", idle_exit=0.3)
    store.execute("CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n")
    store.insert("t", ("n",), [(7,)])
    pid = store.pid
    assert pid is not None
    time.sleep(1.0)
    assert not _gone(pid, within=0.1)  # a connected process keeps it up, however long it is idle
    store.close()
    assert _gone(pid), "the store process did not end after its last user left"
    again = ChdbProcessStore(tmp_path / "chdb", idle_exit=0.3)
    try:
        assert again.pid not in (None, pid)
        assert again.scalar("SELECT sum(n) FROM t") == 7  # the same files
    finally:
        again.close()


def test_the_store_process_comes_back_after_a_kill(tmp_path: Path) -> None:
    store = ChdbProcessStore(tmp_path / "chdb")
    other = ChdbProcessStore(tmp_path / "chdb")
    try:
        store.execute("CREATE TABLE t (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
        store.insert("t", ("n", "s"), [(1, "一"), (2, "二")])
        pid = store.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _gone(pid)
        with pytest.raises(StoreError, match="stopped"):
            store.query("SELECT count() FROM t")
        assert store.scalar("SELECT count() FROM t") == 2  # started again, on the same files
        with pytest.raises(StoreError, match="stopped"):
            other.query("SELECT count() FROM t")
        assert other.scalar("SELECT count() FROM t") == 2
        assert other.pid == store.pid != pid  # the second connection found the new one
    finally:
        store.close()
        other.close()


def test_files_held_outside_the_scheme_fail_clearly_and_are_not_retried_at_every_statement(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chdb"
    late = ChdbProcessStore(path, idle_exit=0.1)
    pid = late.pid
    late.close()
    assert pid is not None and _gone(pid)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        with pytest.raises(StoreError, match="cannot open"):
            late.query("SELECT 1")
        with pytest.raises(StoreError, match="could not start"):  # no new process for a while
            late.query("SELECT 1")
        assert late.pid is None
    finally:
        holder.communicate(input="", timeout=60)
    late._retry_at = 0.0  # the pause is over
    try:
        assert late.scalar("SELECT 41 + 1") == 42
    finally:
        late.close()


# Connects to the store process's socket as another user and reports what it was told.
STRANGER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(bytes.fromhex(sys.argv[1]))
sock.settimeout(10)
print("refused" if sock.recv(64) == b"" else "answered")
"""

# Another user holding a store's past name, greeting whoever connects as a store process would.
SQUATTER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(bytes.fromhex(sys.argv[1]))
sock.listen(8)
print("listening", flush=True)
while True:
    conn, _ = sock.accept()
    conn.sendall(b"1\\n")
"""


def _address(store: ChdbProcessStore) -> str:
    address = store_address(store.path)
    assert address is not None
    return address.hex()


def test_the_store_process_answers_only_its_own_user(tmp_path: Path) -> None:
    # Run as root (as the tests are here and in CI), which may become `nobody` for the stranger.
    store = ChdbProcessStore(tmp_path / "chdb")
    try:
        address = _address(store)
        stranger = subprocess.run(
            ["/usr/bin/python3", "-c", STRANGER, address],
            user="nobody",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert stranger.stdout.strip() == "refused", stranger.stderr
        mine = subprocess.run(
            [sys.executable, "-c", STRANGER, address], capture_output=True, text=True, timeout=30
        )
        assert mine.stdout.strip() == "answered", mine.stderr
        assert store.scalar("SELECT 1") == 1
        # The key the name is made from is the owner's alone.
        for name in ("chdb.key", "chdb.lock", "chdb.log"):
            assert (tmp_path / name).stat().st_mode & 0o077 == 0, name
    finally:
        store.close()


def test_a_name_held_by_another_user_is_passed_over_for_a_new_store(tmp_path: Path) -> None:
    first = ChdbProcessStore(tmp_path / "chdb", idle_exit=0.1)
    first.execute("CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n")
    old_address, old_pid = _address(first), first.pid
    first.close()
    assert old_pid is not None and _gone(old_pid)
    squatter = subprocess.Popen(
        ["/usr/bin/python3", "-c", SQUATTER, old_address], user="nobody", stdout=subprocess.PIPE, text=True
    )
    try:
        assert squatter.stdout is not None and squatter.stdout.readline() == "listening\n"
        store = ChdbProcessStore(tmp_path / "chdb")
        try:
            assert store.pid not in (None, 1, old_pid)
            assert _address(store) != old_address  # started under a new name
            assert store.scalar("SELECT count() FROM t") == 0  # our own store, on our files
        finally:
            store.close()
    finally:
        squatter.kill()
        squatter.wait()


# Starts the store (which then idles for 30 s), asks it one thing and prints the store process's id.
ONE_QUERY = """
import sys
from weituan.tracking.store.chdb_process import ChdbProcessStore
store = ChdbProcessStore(sys.argv[1], idle_exit=30)
assert store.scalar("SELECT 41 + 1") == 42
print(store.pid)
"""


def test_a_command_whose_output_is_read_to_its_end_does_not_wait_for_the_store(tmp_path: Path) -> None:
    """The store process outlives the command that started it, but not on the command's output."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", ONE_QUERY, str(tmp_path / "chdb")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 25  # not the store's 30 s of idling
    pid = int(result.stdout)
    again = ChdbProcessStore(tmp_path / "chdb")
    try:
        assert again.pid == pid  # the same store process, still up for whoever comes next
    finally:
        again.close()
        os.kill(pid, signal.SIGKILL)
