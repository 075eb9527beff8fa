"""The embedded store, run in one store process that every process of a data directory shares.

chDB files can be opened by one process only, and chDB holds the interpreter lock for much of an
insert or a query (in a serving process, redirects waited up to a few hundred milliseconds at each
flush). So one store process opens the files, and every process that needs the store (each serving
process, `weituan worker`, a management command) sends it statements and inserts over a Unix socket,
and waits on the socket without holding its own interpreter lock.

- The first process that needs the store starts it, under an exclusive `flock` on a file beside the
  store's files (`<path>.lock`), so two processes never start one each. It leaves the process's
  session, so a Ctrl-C meant for a server does not stop a store that others still use.
- The store process serves each connection on a thread of its own; statements run one at a time, as
  chDB runs them anyway.
- It ends once no process has been connected for `idle_exit` seconds: it takes the lock, stops
  listening, closes the files and exits, and only then lets go of the lock. A process that
  connected in that moment is told nothing (end-of-file), and starts a new store process under the
  lock once the old one has gone. A process whose store process died (a kill) gets an error for the
  statement it was sending, and starts a new one at its next statement.
- The socket's address is in Linux's abstract namespace (a kill leaves no file behind, and no path is
  too long for it), named after the store's path and a random key that each start writes anew to
  `<path>.key`, readable by the owner only: another user can neither compute the name nor squat a
  past one usefully. Each side checks the other's user (`SO_PEERCRED`) before it reads a byte, so the
  pickled messages only ever come from a process of the same user.
- The store process writes nothing to the output of the process that started it (which a caller may
  be reading to its end): its errors go to `<path>.log`.

Run as `python -m weituan.tracking.store.chdb_process <path> <ready fd> <idle seconds>`: it needs no
Django.
"""

import contextlib
import fcntl
import hashlib
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from weituan.tracking.store.base import AnalyticsStore, StoreError

RESTART_PAUSE = 30.0  # seconds between tries to start a store process that failed to start
IDLE_EXIT = 10.0  # seconds without any connected process after which the store process ends
START_TIMEOUT = 120.0  # seconds a new store process may take to open its files and listen
GREETING_TIMEOUT = 30.0  # seconds a store process may take to greet a new connection
READY = b"ready"
_PEERCRED = struct.Struct("3i")  # pid, uid, gid of the process at the other end of a Unix socket
_OWNER_ONLY = 0o600


def _owner_only_open(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, _OWNER_ONLY)


def store_key_write(path: str) -> None:
    """A new random key for the store at `path` (its socket's name changes with it)."""
    temporary = f"{path}.key.{os.getpid()}"
    fd = _owner_only_open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(16))
    os.replace(temporary, path + ".key")


def store_address(path: str) -> bytes | None:
    """The abstract socket address of the store process for the store files at `path` (None before
    any store process was started for them)."""
    try:
        with open(path + ".key") as key_file:
            key = key_file.read().strip()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(f"{os.path.realpath(path)}\0{key}".encode("utf-8", "surrogateescape")).hexdigest()
    return b"\0weituan-chdb-" + digest[:32].encode()


def same_user(sock: socket.socket) -> bool:
    """Is the process at the other end of this Unix socket one of this process's user?"""
    _pid, uid, _gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return uid == os.getuid()


def _reap(proc: "subprocess.Popen[bytes]") -> None:
    proc.wait()


_connections: "weakref.WeakSet[ChdbProcessStore]" = weakref.WeakSet()


def _forget_after_fork() -> None:
    # The connections are the parent's: a forked child makes its own when it needs one.
    for store in list(_connections):
        store._forget_after_fork()


os.register_at_fork(after_in_child=_forget_after_fork)


class ChdbProcessStore(AnalyticsStore):
    """A connection to the shared store process. Thread-safe: one statement at a time per connection."""

    kind = "chdb"

    def __init__(self, path: Path | str, *, idle_exit: float = IDLE_EXIT):
        self.path = os.path.realpath(path)
        self.idle_exit = idle_exit
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._pid: int | None = None
        self._retry_at = 0.0
        self._start_error = ""
        with self._lock:
            self._connect()
        _connections.add(self)

    def _forget_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._inherited = self._conn  # kept referenced, never used or closed here
        self._conn, self._pid = None, None

    @property
    def pid(self) -> int | None:
        """The id of the store process this connection talks to (None while not connected)."""
        return self._pid

    def _connect(self) -> None:
        # Called with the lock held.
        answer = self._try_connect()
        if answer is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(_owner_only_open(self.path + ".lock", os.O_RDWR | os.O_CREAT), "rb") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                answer = self._try_connect()  # another process may have started it meanwhile
                if answer is None:
                    self._spawn()
                    answer = self._try_connect()
            if answer is None:
                raise StoreError("the analytics store process started but does not answer")
        self._conn, self._pid = answer

    def _try_connect(self) -> tuple[Connection, int] | None:
        address = store_address(self.path)
        if address is None:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
            if not same_user(sock):  # someone else's socket under the name: start our own, named anew
                sock.close()
                return None
            sock.settimeout(GREETING_TIMEOUT)
            greeting = sock.recv(16)  # the store process's id; end-of-file when it is ending
            sock.settimeout(None)
        except OSError:  # refused (none listening), reset (ending), or no greeting in time
            sock.close()
            return None
        if not greeting.endswith(b"\n") or not greeting[:-1].isdigit():
            sock.close()
            return None
        return Connection(sock.detach()), int(greeting[:-1])

    def _spawn(self) -> None:
        # Called with the lock held and the start lock taken.
        store_key_write(self.path)
        log = _owner_only_open(self.path + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        read_fd, write_fd = os.pipe()
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
                    str(write_fd),
                    repr(self.idle_exit),
                ],
                pass_fds=(write_fd,),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
            os.close(log)
        # Reaped when it ends, whoever is still connected to it then.
        threading.Thread(target=_reap, args=(proc,), daemon=True, name="chdb-store-reaper").start()
        answer = _ready_answer(read_fd, START_TIMEOUT)
        if answer != READY:
            proc.kill()
            message = answer.decode("utf-8", "replace") or "it ended before it was ready"
            raise StoreError(f"the analytics store process did not start: {message}")

    def _disconnect(self) -> None:
        # Called with the lock held.
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn, self._pid = None, None

    def _call(self, op: str, *args: Any) -> Any:
        with self._lock:
            if self._conn is None:
                # A store that could not start (its files held by a process outside this scheme) is not
                # tried again at every statement: each try starts an interpreter.
                if time.monotonic() < self._retry_at:
                    raise StoreError(f"the analytics store process could not start: {self._start_error}")
                try:
                    self._connect()
                except (StoreError, OSError) as exc:
                    self._retry_at, self._start_error = time.monotonic() + RESTART_PAUSE, str(exc)
                    raise StoreError(str(exc)) from exc
            conn = self._conn
            assert conn is not None
            try:
                conn.send((op, args))
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._disconnect()  # connected again (or started again) by the next statement
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
        """Disconnect; the store process ends by itself once no process is connected."""
        with self._lock:
            self._disconnect()


def _ready_answer(read_fd: int, timeout: float) -> bytes:
    """What a starting store process wrote on its ready pipe until it closed it (b"" after `timeout`)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with os.fdopen(read_fd, "rb", buffering=0) as ready:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ready], [], [], left)[0]:
                return b""
            chunk = ready.read(4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


class _StoreServer:
    """The store process's side: accepts connections and answers each on a thread of its own."""

    def __init__(self, path: str, listener: socket.socket, lock_file: IO[bytes], idle_exit: float):
        from weituan.tracking.store.chdb_store import ChdbStore

        self.path = path
        self.listener = listener
        self.lock_file = lock_file
        self.idle_exit = idle_exit
        self.store = ChdbStore(path)
        self.operations: dict[str, Callable[..., Any]] = {
            "execute": self.store.execute,
            "select": self.store._select_json,
            "insert": self.store._insert_tsv,
            "insert_files": self.store.insert_tsv_files,
        }
        self.clients_lock = threading.Lock()
        self.clients = 0
        self.idle_since = time.monotonic()

    def run(self) -> None:
        self.listener.settimeout(min(0.5, max(0.05, self.idle_exit / 4)))
        try:
            while True:
                try:
                    sock, _ = self.listener.accept()
                except TimeoutError:
                    if self._may_end():
                        return
                    continue
                sock.settimeout(None)
                if not same_user(sock):
                    sock.close()
                    continue
                with self.clients_lock:
                    self.clients += 1
                threading.Thread(target=self._answer, args=(Connection(sock.detach()),), daemon=True).start()
        finally:
            self.listener.close()
            self.store.close()

    def _may_end(self) -> bool:
        with self.clients_lock:
            if self.clients or time.monotonic() - self.idle_since < self.idle_exit:
                return False
        try:
            # Held until this process has exited: no new store process opens the files before then.
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a process is starting or reaching the store right now
        with self.clients_lock:
            if self.clients:
                fcntl.flock(self.lock_file, fcntl.LOCK_UN)
                return False
        return True

    def _answer(self, conn: Connection) -> None:
        try:
            # The greeting is plain bytes: the other side checks who we are before it unpickles anything.
            os.write(conn.fileno(), b"%d\n" % os.getpid())
            while True:
                try:
                    op, args = conn.recv()
                except (EOFError, OSError):
                    return
                if op == "close":
                    return
                try:
                    answer = (True, self.operations[op](*args))
                except Exception as exc:
                    answer = (False, str(exc))
                conn.send(answer)
        except OSError:
            return  # the other process went away mid-answer
        finally:
            conn.close()
            with self.clients_lock:
                self.clients -= 1
                if not self.clients:
                    self.idle_since = time.monotonic()


def serve(path: str, ready_fd: int, idle_exit: float) -> int:
    """Open the store, listen, report readiness on `ready_fd`, and answer until idle."""
    with os.fdopen(ready_fd, "wb") as ready:
        # Held for the life of the process.
        lock_file = os.fdopen(_owner_only_open(path + ".lock", os.O_RDWR | os.O_CREAT), "rb")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = store_address(path)
        try:
            server = _StoreServer(path, listener, lock_file, idle_exit)
        except Exception as exc:
            listener.close()
            ready.write(str(exc).encode())
            return 1
        try:
            if address is None:
                raise OSError("no key was written for this store")
            listener.bind(address)
            listener.listen(128)
        except OSError as exc:
            server.store.close()
            listener.close()
            ready.write(f"cannot listen: {exc}".encode())
            return 1
        ready.write(READY)
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
