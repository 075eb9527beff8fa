"""The embedded store run in a process of its own, which the serving process talks to over a socket.

chDB holds the interpreter lock for much of an insert or a query, so in the serving process every
batch of clicks stalled the event loop (redirects waited up to a few hundred milliseconds at each
flush). Here the chDB files are still opened by one process only, the store process; the serving
process sends it each statement and insert and waits on the socket without holding the lock. The
store process ends when the serving process does (it reads end-of-file), and is started again on
the next statement if it died.

Run as `python -m weituan.tracking.store.chdb_process <path> <socket fd>`: it needs no Django.
"""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from weituan.tracking.store.base import AnalyticsStore, StoreError

RESTART_PAUSE = 30.0  # seconds between tries to start a store process that failed to start


class ChdbProcessStore(AnalyticsStore):
    """chDB in a child process. Thread-safe: one statement at a time, as chDB runs them anyway."""

    kind = "chdb"

    def __init__(self, path: Path | str):
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._retry_at = 0.0
        self._start_error = ""
        with self._lock:
            self._start()
        os.register_at_fork(after_in_child=self._forget_after_fork)

    def _forget_after_fork(self) -> None:
        # The socket and the store process are the parent's: a forked child starts its own if it needs one.
        self._lock = threading.Lock()
        self._inherited = (self._conn, self._proc)  # kept referenced, never used or closed here
        self._conn, self._proc = None, None

    @property
    def pid(self) -> int | None:
        """The store process's id (None while it is not running)."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        # Called with the lock held.
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in [str(Path(__file__).resolve().parents[3]), env.get("PYTHONPATH", "")] if p
        )
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own module, with the interpreter we run on
                [
                    sys.executable,
                    "-m",
                    "weituan.tracking.store.chdb_process",
                    self.path,
                    str(theirs.fileno()),
                ],
                pass_fds=(theirs.fileno(),),
                env=env,
            )
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        try:
            ok, value = conn.recv()
        except (EOFError, OSError) as exc:
            conn.close()
            proc.wait()
            raise StoreError(f"the analytics store process did not start: {exc}") from exc
        if not ok:
            conn.close()
            proc.wait()
            raise StoreError(value)
        self._conn, self._proc = conn, proc

    def _stop(self) -> None:
        # Called with the lock held.
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._conn, self._proc = None, None

    def _call(self, op: str, *args: Any) -> Any:
        with self._lock:
            if self._conn is None:
                # A store that could not start (its files held by another process) is not tried again
                # at every statement: each try starts an interpreter.
                if time.monotonic() < self._retry_at:
                    raise StoreError(f"the analytics store process could not start: {self._start_error}")
                try:
                    self._start()
                except StoreError as exc:
                    self._retry_at, self._start_error = time.monotonic() + RESTART_PAUSE, str(exc)
                    raise
            conn = self._conn
            assert conn is not None
            try:
                conn.send((op, args))
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._stop()  # started again by the next statement
                raise StoreError(f"the analytics store process stopped: {exc!r}") from exc
        if not ok:
            raise StoreError(value)
        return value

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._call("execute", sql, params)

    def _select_json(self, sql: str, params: dict[str, Any] | None) -> bytes:
        result: bytes = self._call("select", sql, params)
        return result

    def _insert_tsv(self, table: str, columns: Sequence[str], payload: bytes) -> None:
        self._call("insert", table, tuple(columns), payload)

    def insert_tsv_files(
        self, table: str, columns: Sequence[str], files: Sequence[tuple[str, int]]
    ) -> list[int] | None:
        # The store process reads and checks the files itself: only their names cross the socket, and
        # the serving process neither copies nor pickles their text under its interpreter lock.
        named = [(os.path.abspath(path), length) for path, length in files]
        counts: list[int] | None = self._call("insert_files", table, tuple(columns), named)
        return counts

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send(("close", ()))
            self._stop()


def serve(path: str, conn: Connection) -> None:
    """Answer statements from the serving process until it closes the socket."""
    from weituan.tracking.store.chdb_store import ChdbStore

    try:
        store = ChdbStore(path)
    except Exception as exc:
        conn.send((False, str(exc)))
        return
    conn.send((True, None))
    operations: dict[str, Callable[..., Any]] = {
        "execute": store.execute,
        "select": store._select_json,
        "insert": store._insert_tsv,
        "insert_files": store.insert_tsv_files,
    }
    try:
        while True:
            try:
                op, args = conn.recv()
            except (EOFError, OSError):
                break
            if op == "close":
                break
            try:
                conn.send((True, operations[op](*args)))
            except Exception as exc:
                conn.send((False, str(exc)))
    finally:
        store.close()


if __name__ == "__main__":
    serve(sys.argv[1], Connection(int(sys.argv[2])))
