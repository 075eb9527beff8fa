"""Shared pieces of the benchmarks: a fresh database, a server on loopback, wrk, and the results file.

Every benchmark measures its baseline in the same run, because this machine is shared and noisy:
ratios are what compare across runs, absolute figures only describe the run they came from.
"""

import cProfile
import io
import json
import os
import pstats
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_BENCH_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def bench_database(name: str) -> str:
    """The PostgreSQL database a benchmark named `name` uses (BENCH_PG_DB picks another, so two runs
    on one server keep apart)."""
    return os.environ.get("BENCH_PG_DB") or f"weituan_bench_{name}"


@dataclass
class Store:
    """Where a benchmark keeps its data: 'sqlite' (embedded default) or 'postgres' (PostgreSQL + Redis)."""

    kind: str
    data_dir: Path
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_store(kind: str, name: str) -> Store:
    """A fresh, empty store and the environment that points the product at it."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"weituan-bench-{name}-"))
    env = {
        "WEITUAN_DATA_DIR": str(data_dir),
        "WEITUAN_PROFILE": "demo",
        "WEITUAN_LOG_LEVEL": "ERROR",
        "WEITUAN_RATE_LIMIT_WRITES": "100000000",
    }
    if kind == "postgres":
        import psycopg
        import redis

        database = bench_database(name)
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        redis.Redis.from_url(REDIS_BENCH_URL).flushdb()
        env["DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
        env["REDIS_URL"] = REDIS_BENCH_URL
        env["WEITUAN_CONN_MAX_AGE"] = "600"
    elif kind != "sqlite":
        raise SystemExit(f"unknown store {kind!r}: use sqlite or postgres")
    return Store(kind=kind, data_dir=data_dir, env=env)


def discard_store(store: Store) -> None:
    """Remove what prepare_store made: the data directory and, for PostgreSQL, the database."""
    shutil.rmtree(store.data_dir, ignore_errors=True)
    url = store.env.get("DATABASE_URL")
    if store.kind == "postgres" and url:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def setup_django(store: Store) -> None:
    """Point this process at the store, set Django up and migrate."""
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update(store.env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def setup_django_for_profile(
    data_dir: str, *, postgres: str | None, redis: str | None, extra: dict[str, str] | None = None
) -> None:
    """Set Django up in this process for an in-process profile: data kept in `data_dir` (SQLite), or
    in the `postgres` database with `redis`, so repeated profiles reuse what an earlier one built."""
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    env = {
        "WEITUAN_DATA_DIR": str(path),
        "WEITUAN_PROFILE": "demo",
        "WEITUAN_LOG_LEVEL": "ERROR",
        **(extra or {}),
    }
    if postgres:
        env["DATABASE_URL"] = postgres
    if redis:
        env["REDIS_URL"] = redis
    setup_django(Store("postgres" if postgres else "sqlite", path, env))


def wsgi_post_json(application: Any, path: str, body: bytes, token: str, **headers: str) -> tuple[str, bytes]:
    """POST `body` (JSON) to the WSGI `application` in this process with a bearer token and any other
    `headers` (given as their WSGI names, HTTP_...); returns the status line and the body."""
    return _wsgi_call(
        application,
        {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "wsgi.input": io.BytesIO(body),
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            **headers,
        },
    )


def wsgi_get(application: Any, path: str, query: str, token: str) -> tuple[str, bytes]:
    """GET `path?query` from the WSGI `application` in this process with a bearer token; returns the
    status line and the body."""
    return _wsgi_call(
        application,
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "wsgi.input": io.BytesIO(b""),
            "HTTP_AUTHORIZATION": f"Bearer {token}",
        },
    )


def _wsgi_call(application: Any, request: dict[str, Any]) -> tuple[str, bytes]:
    environ = {
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        **request,
    }
    seen: list[str] = []
    chunks = application(environ, lambda status, headers, *_: seen.append(status))
    content = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return (seen[0] if seen else ""), content


def profile_requests(
    request: Callable[[int], None],
    *,
    count: int,
    noun: str,
    sort: str,
    top: int,
    no_profile: bool,
    cpu_clock: bool = True,
) -> None:
    """What an in-process profile prints for `request(i)` (already warmed up): its statements, then
    `count` of them timed (the process's CPU, and on PostgreSQL its backend's), then, unless
    `no_profile`, a cProfile of `count` more on the CPU clock (or the wall clock)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        request(0)
    print(f"statements per {noun}: {len(captured.captured_queries)}")
    for query in captured.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:200]}")
    backend_before = postgres_backend_cpu(connection)
    started, before = time.perf_counter(), os.times()
    for i in range(count):
        request(i)
    plain, after = time.perf_counter() - started, os.times()
    backend_after = postgres_backend_cpu(connection)
    user, system = (after.user - before.user) / count, (after.system - before.system) / count
    print(
        f"{count} {noun}s in {plain:.2f} s = {count / plain:,.0f}/s (in process, one thread);"
        f" CPU per {noun} {user * 1000:.2f} ms user + {system * 1000:.2f} ms system,"
        f" wall {plain / count * 1000:.2f} ms"
    )
    if backend_before is not None and backend_after is not None:
        spent = (backend_after - backend_before) / count
        print(f"PostgreSQL backend CPU per {noun}: {spent * 1000:.2f} ms (user + system, from /proc)")
    if no_profile:
        return
    profiler = cProfile.Profile(time.process_time) if cpu_clock else cProfile.Profile()
    profiler.enable()
    for i in range(count):
        request(i)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(sort).print_stats(top)


def postgres_backend_cpu(connection: Any) -> float | None:
    """CPU seconds (user + system) the PostgreSQL backend serving `connection` has used, when the server
    runs on this machine; None on SQLite or when its process cannot be read."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVERS = ("uvicorn", "granian", "granian-asgi")


def server_command(
    server: str,
    *,
    port: int,
    workers: int,
    threads: int,
    app: str = "weituan.asgi:application",
    wsgi_app: str = "weituan.wsgi:application",
) -> list[str]:
    """How to start the product on 127.0.0.1:`port`: uvicorn on the ASGI app (what `weituan serve` runs by
    default), granian on the WSGI app with `threads` threads per process (`weituan serve --server
    granian`), or granian on the ASGI app.
    `app` and `wsgi_app` name another application to serve the same way (a benchmark's baseline)."""
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
            "--no-access-log",
            "--workers",
            str(workers),
        ]
    if server == "granian-asgi":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asginl",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-ws",
            "--log-level",
            "warning",
            app,
        ]
    if server == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--blocking-threads",
            str(threads),
            "--log-level",
            "warning",
            wsgi_app,
        ]
    raise SystemExit(f"unknown server {server!r}: use one of {', '.join(SERVERS)}")


class Server:
    """`weituan serve`-equivalent server process(es) on 127.0.0.1, stopped on exit. `app` / `wsgi_app`
    serve another application the same way (a baseline). Every process stores its events in the data
    directory's embedded analytics store, as `weituan serve`'s do."""

    def __init__(
        self,
        store: Store,
        *,
        workers: int = 1,
        app: str = "weituan.asgi:application",
        wsgi_app: str = "weituan.wsgi:application",
        extra_env=None,
        server: str = "uvicorn",
        threads: int = 4,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **store.env, **(extra_env or {})}
        command = server_command(
            server, port=self.port, workers=workers, threads=threads, app=app, wsgi_app=wsgi_app
        )
        self.process = subprocess.Popen(command, env=env, cwd=str(ROOT), start_new_session=True)

    def wait_ready(self, path: str = "/healthz", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("the server exited during start-up")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the server did not answer in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is needed for the load (apt-get install wrk)")
    return path


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, *, connections: int, seconds: int, script: Path | None = None, env=None) -> LoadResult:
    """Closed-loop load from wrk (2 threads) against a loopback URL; bounded by `seconds`."""
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit("load is only ever sent to 127.0.0.1")
    command = [ensure_wrk(), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        env={**os.environ, **(env or {})},
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    duration = re.search(r"requests in ([\d.]+)(ms|s|m)", output)
    seconds_taken = float(duration.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[duration.group(2)]  # type: ignore[union-attr]
    latency = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, re.M))
    if "50" not in latency or "99" not in latency:
        raise SystemExit("could not read wrk output:\n" + output)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return LoadResult(
        requests=requests,
        seconds=seconds_taken,
        rps=requests / seconds_taken,
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        errors=errors,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def proc_cpu(pid: int) -> tuple[str, int, float] | None:
    """(command name, session id, CPU seconds user + system) of a process; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return name, int(fields[3]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends(kind: str) -> Callable[[], set[int]]:
    """A function naming the PostgreSQL backends serving the benchmark's database (the store `kind`'s;
    none on SQLite), all but this process's own connection, for `cpu_split`."""
    if kind != "postgres":
        return set

    def backends() -> set[int]:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return {pid for (pid,) in cursor.fetchall()}

    return backends


def cpu_split(
    *, server_session: int, postgres_pids: Callable[[], set[int]], worker_session: int | None = None
) -> dict[str, float]:
    """CPU seconds used so far by the server (every process of its session), a task worker (every
    process of `worker_session`, when given), the PostgreSQL backends `postgres_pids()` names (those of
    the benchmark's database), Redis, and this process's finished children (the load generator): take
    one before and one after a load, see `cpu_spent`."""
    split = {"server": 0.0, "postgres": 0.0, "redis": 0.0}
    if worker_session is not None:
        split["worker"] = 0.0
    backends = postgres_pids()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = proc_cpu(int(entry.name))
        if found is None:
            continue
        name, session, cpu = found
        if session == server_session:
            split["server"] += cpu
        elif worker_session is not None and session == worker_session:
            split["worker"] += cpu
        elif int(entry.name) in backends:
            split["postgres"] += cpu
        elif name == "redis-server":
            split["redis"] += cpu
    children = os.times()
    split["load generator"] = children.children_user + children.children_system
    return split


def cpu_spent(before: dict[str, float], after: dict[str, float], requests: int) -> str:
    """Milliseconds of CPU per request by part, between two `cpu_split`s (a backend that ended between
    them is missed; the server's connections stay open through a load)."""
    parts = [f"{name} {(after[name] - before[name]) / requests * 1000:.2f}" for name in after]
    total = sum(after[name] - before[name] for name in after) / requests * 1000
    return "; ".join(parts) + f"; all {total:.2f} ms"


def machine_line() -> str:
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, load average {load:.1f} at start, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"


def record(section: str, command: str, lines: list[str], figures: dict) -> None:
    """Replace this benchmark's section of bench/RESULTS.md and keep the raw figures beside it as JSON."""
    header = f"## {section}"
    body = "\n".join([header, "", f"Command: `{command}`", "", *lines, ""])
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else "# Benchmark results\n\nEach section is replaced by its benchmark's latest run.\n\n"
    )
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(body + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + body + "\n"
    RESULTS.write_text(text)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / f"{section.replace(' ', '_').replace('/', '_')}.json").write_text(
        json.dumps(figures, indent=2, default=str)
    )
