"""Flash-sale checkout over HTTP: 200 clients on loopback against a 9-unit and a 10,000-unit deal.

    python -m bench.flash_sale.run [--store sqlite|postgres|both] [--units 10000] [--clients 200]
                                   [--server granian|granian-asgi|uvicorn] [--workers N] [--threads N]

On SQLite the product is served by granian on the WSGI app, one process of one thread (what `weituan
serve --server granian` runs without Redis); on PostgreSQL + Redis by uvicorn on the ASGI app, two
processes (what `weituan serve --workers 2` runs), where the solo orders of a deal arriving together
are combined on each process's event loop (`deals.services.combined`). `--server` serves either store
by granian on the WSGI app (`workers` processes of `threads` threads), granian on the ASGI app, or
uvicorn. On PostgreSQL each process lends its connections
from a pool, so the server holds a bounded number of them. The server's peak memory (all its
processes) and, on PostgreSQL, its peak number of connections are reported, and every error the
server logged is counted by exception type.

Reports checkouts/s and, apart, refusals (the 9-unit deal is mostly `sold_out` answers), p99 latency,
oversell (must be 0) and double charges (must be 0), against the raw engine limit measured in the
same run: the same conditional UPDATE through the database driver (sqlite3 / psycopg) and the same Lua
decrement through redis-py. 5% of the requests are sent twice with the same Idempotency-Key, as a
client retrying after a timeout would.

Next to them, the bare HTTP rate of the same run: the same clients sending the same requests (as many
as the large deal has units) to a trivial app (`bare_app`, a fixed 201 answer) on the same server with
the same processes and threads, once before the product is served and once after; the checkouts are
also reported as a share of it (how much of the gap is the HTTP stack itself).

And what each costs in CPU: a checkout of the large deal (the server's processes, the database's
backends, Redis, the load generator) and a raw decrement (its client threads, the database's backends
or Redis), with the CPU a checkout could use at most if the checkouts were to run at half the raw
UPDATE's rate on this box's cores.
"""

import argparse
import asyncio
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import uvloop

from bench.common import (
    ROOT,
    cpu_split,
    database_backends,
    free_port,
    machine_line,
    prepare_store,
    proc_cpu,
    record,
    server_command,
    setup_django,
)
from bench.flash_sale.client import Connection, HTTPFailed
from weituan.cli import pool_size_for

# The raw decrement's limit is the best rate of these client threads (one row: more threads contend
# for its lock, fewer leave the engine waiting on the client).
RAW_THREADS = (8, 32)
RSS_LIMIT_MB = 1024
RETRY_EVERY = 20  # one request in 20 is sent a second time with the same Idempotency-Key
BARE_WSGI, BARE_ASGI = "bench.flash_sale.bare_app:application", "bench.flash_sale.bare_app:app"


@dataclass
class Run:
    ok: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    order_ids: set[int] = field(default_factory=set)
    replays_mismatched: int = 0
    latencies: list[float] = field(default_factory=list)
    ok_latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    if len(values) < 100:
        return max(values) * 1000
    return statistics.quantiles(values, n=100)[98] * 1000


def world(units: int, clients: int) -> dict[str, Any]:
    """The merchant, the buyers with tokens and money, and the two live deals (in this process's Django)."""
    from django.utils import timezone

    from weituan.accounts.tokens import access_token_issue
    from weituan.core.testing import make_user
    from weituan.deals.services.deals import DealInput, deal_create, deal_publish
    from weituan.deals.services.wallet import wallet_top_up

    merchant = make_user("flash_shop", merchant=True)
    now = timezone.now()
    deals = {}
    for name, quantity, per_user in (("nine", 9, 1), ("bulk", units, max(units // clients * 2, 1))):
        deal = deal_create(
            merchant=merchant,
            data=DealInput(
                title=f"秒杀 {name}",
                list_price=200,
                deal_price=100,
                max_quantity=quantity,
                tipping_point=quantity,
                per_user_limit=per_user,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(hours=2),
            ),
        )
        deals[name] = deal_publish(deal_id=deal.id, by=merchant).id
    tokens = []
    for index in range(clients):
        buyer = make_user(f"flash{index}")
        wallet_top_up(user=buyer, amount=(units // clients * 2 + 10) * 100)
        tokens.append(access_token_issue(user=buyer)[0])
    return {"deals": deals, "tokens": tokens}


async def hammer_bare(base: str, tokens: list[str], requests: int) -> Run:
    """The checkout's load against the bare app: each client sends its share of `requests` order
    requests (the same headers and body as a checkout), one after another on its connection."""
    run = Run()
    host, port = base.removeprefix("http://").split(":")
    body = {"quantity": 1, "unit_price": 100}
    share, rest = divmod(requests, len(tokens))

    async def client(index: int, token: str) -> None:
        http = Connection(host, int(port))
        try:
            for attempt in range(share + (index < rest)):
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bare-c{index}-a{attempt}"}
                if await _post_timed(http, "/api/v1/deals/1/orders", body, headers, run) is None:
                    return
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i, token) for i, token in enumerate(tokens)))
    run.seconds = time.perf_counter() - started
    return run


async def _post_timed(
    http: Connection, path: str, body: dict[str, Any], headers: dict[str, str], run: Run
) -> tuple[int, Any] | None:
    """POST `body` and record the answer's latency (and a 201 as a success) in `run`; None when the
    connection failed (counted as an error)."""
    started = time.perf_counter()
    try:
        status, answer = await http.post_json(path, body, headers)
    except HTTPFailed:
        run.errors += 1
        return None
    took = time.perf_counter() - started
    run.latencies.append(took)
    if status == 201:
        run.ok += 1
        run.ok_latencies.append(took)
    return status, answer


async def hammer(base: str, deal_id: int, tokens: list[str], *, once: bool) -> Run:
    """Every client buys one unit at a time until the deal refuses it; `once`: a single attempt each.

    One keep-alive connection per client (see client.py for why not a general HTTP client)."""
    run = Run()
    host, port = base.removeprefix("http://").split(":")
    path = f"/api/v1/deals/{deal_id}/orders"
    body = {"quantity": 1, "unit_price": 100}

    async def client(index: int, token: str) -> None:
        http = Connection(host, int(port))
        attempt = 0
        try:
            while True:
                attempt += 1
                key = f"d{deal_id}-c{index}-a{attempt}"
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
                answered = await _post_timed(http, path, body, headers, run)
                if answered is None:
                    return
                status, answer = answered
                if status == 201:
                    order_id = answer["id"]
                    run.order_ids.add(order_id)
                    if attempt % RETRY_EVERY == 1:
                        again_status, again = await http.post_json(path, body, headers)
                        # A retry that is answered with another order would be a second charge.
                        if again_status != 201 or again["id"] != order_id:
                            run.replays_mismatched += 1
                else:
                    code = str(answer.get("code", status)) if isinstance(answer, dict) else f"http_{status}"
                    run.refused[code] = run.refused.get(code, 0) + 1
                    if code != "idempotency_in_progress":
                        return
                if once:
                    return
        finally:
            await http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i, token) for i, token in enumerate(tokens)))
    run.seconds = time.perf_counter() - started
    return run


def audit(deal_id: int, run: Run) -> dict[str, int]:
    """Oversell and double charges, read from the database after the run."""
    from django.db.models import Count, Sum

    from weituan.deals.models import Deal, Order, Posting
    from weituan.deals.queries import ledger_report

    deal = Deal.objects.get(id=deal_id)
    orders = Order.objects.filter(deal=deal)
    units = int(orders.aggregate(q=Sum("quantity"))["q"] or 0)
    holds_per_order = (
        Posting.objects.filter(order__deal=deal, kind="authorize").values("order_id").annotate(n=Count("id"))
    )
    double_holds = sum(1 for row in holds_per_order if row["n"] > 1)
    return {
        "sold": deal.sold,
        "max_quantity": deal.max_quantity,
        "oversell": max(units - deal.max_quantity, 0) + max(deal.sold - deal.max_quantity, 0),
        "orders_in_db": orders.count(),
        "orders_answered": len(run.order_ids),
        "double_charges": double_holds + run.replays_mismatched + max(orders.count() - len(run.order_ids), 0),
        "ledger_ok": int(ledger_report().ok),
    }


@dataclass
class RawRate:
    """A raw baseline's decrements/s and the CPU one decrement cost, in ms: the client's (this process's
    threads) and the engine's (PostgreSQL's backends, Redis; SQLite runs in the client)."""

    per_s: float
    client_ms: float
    engine_ms: float
    threads: int

    @property
    def cpu_ms(self) -> float:
        return self.client_ms + self.engine_ms


def raw_limit(measure: Callable[[int], RawRate]) -> RawRate:
    """The best of a raw decrement's rates over RAW_THREADS: the engine's limit for it."""
    return max((measure(threads) for threads in RAW_THREADS), key=lambda rate: rate.per_s)


def raw_sql_rate(kind: str, store_env: dict[str, str], units: int, threads: int) -> RawRate:
    """Decrements/s of `UPDATE stock SET sold = sold + 1 WHERE id = 1 AND sold + 1 <= units`, autocommit."""
    done = {"n": 0}
    lock = threading.Lock()
    engine = [0.0]  # CPU seconds of the PostgreSQL backends while they ran the decrements
    if kind == "sqlite":
        path = store_env["WEITUAN_DATA_DIR"] + "/raw_baseline.sqlite3"
        setup = sqlite3.connect(path)
        setup.executescript(
            "PRAGMA journal_mode=WAL; DROP TABLE IF EXISTS stock;"
            " CREATE TABLE stock (id INTEGER PRIMARY KEY, sold INTEGER NOT NULL); INSERT INTO stock VALUES (1, 0);"
        )
        setup.close()

        def connect() -> Any:
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        statement = "UPDATE stock SET sold = sold + 1 WHERE id = 1 AND sold + 1 <= ?"
    else:
        import psycopg

        url = store_env["DATABASE_URL"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS raw_stock")
            conn.execute("CREATE TABLE raw_stock (id int PRIMARY KEY, sold int NOT NULL)")
            conn.execute("INSERT INTO raw_stock VALUES (1, 0)")

        def connect() -> Any:
            return psycopg.connect(url, autocommit=True)

        statement = "UPDATE raw_stock SET sold = sold + 1 WHERE id = 1 AND sold + 1 <= %s"

    def worker() -> None:
        conn = connect()
        backend = conn.info.backend_pid if kind != "sqlite" else None
        started = _cpu_of(backend)
        try:
            while True:
                if conn.execute(statement, (units,)).rowcount != 1:
                    return
                with lock:
                    done["n"] += 1
        finally:
            spent = _cpu_of(backend) - started
            with lock:
                engine[0] += spent
            conn.close()

    client_before = time.process_time()
    per_s = _timed(worker, done, units, threads)
    client = time.process_time() - client_before
    return RawRate(per_s, client / units * 1000, engine[0] / units * 1000, threads)


def _cpu_of(pid: int | None) -> float:
    """CPU seconds a process has used so far (0 for none, or one that is gone)."""
    found = proc_cpu(pid) if pid is not None else None
    return found[2] if found is not None else 0.0


def _redis_pid() -> int | None:
    for entry in os.listdir("/proc"):
        found = proc_cpu(int(entry)) if entry.isdigit() else None
        if found is not None and found[0] == "redis-server":
            return int(entry)
    return None


def raw_lua_rate(redis_url: str, units: int, threads: int) -> RawRate:
    import redis

    client = redis.Redis.from_url(redis_url, max_connections=threads + 4)
    client.set("wt-bench:raw_stock", units)
    script = client.register_script(
        "local n = tonumber(redis.call('GET', KEYS[1])) if n > 0 then redis.call('DECR', KEYS[1]) return 1 end return 0"
    )
    done = {"n": 0}
    lock = threading.Lock()

    def worker() -> None:
        while script(keys=["wt-bench:raw_stock"]) == 1:
            with lock:
                done["n"] += 1

    server = _redis_pid()
    engine_before, client_before = _cpu_of(server), time.process_time()
    per_s = _timed(worker, done, units, threads)
    engine, spent = _cpu_of(server) - engine_before, time.process_time() - client_before
    client.delete("wt-bench:raw_stock")
    return RawRate(per_s, spent / units * 1000, engine / units * 1000, threads)


def _timed(worker: Any, done: dict[str, int], units: int, count: int) -> float:
    threads = [threading.Thread(target=worker) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    assert done["n"] == units, f"raw baseline sold {done['n']} of {units}"
    return units / seconds


class Serving:
    """The product under granian on 127.0.0.1, its log kept in the store's directory, its processes
    watched for memory (VmRSS summed over the server's process group) and database connections."""

    def __init__(
        self, store: Any, *, workers: int, threads: int, server: str = "granian", bare: bool = False
    ):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(store.data_dir) / ("bare.log" if bare else "server.log")
        self.database = "" if bare else store.env.get("DATABASE_URL", "")
        apps = {"app": BARE_ASGI, "wsgi_app": BARE_WSGI} if bare else {}
        command = server_command(server, port=port, workers=workers, threads=threads, **apps)
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            # The pool `weituan serve` gives a process of this many threads.
            env={"WEITUAN_DB_POOL_MAX": str(pool_size_for(threads)), **os.environ, **store.env},
            cwd=str(ROOT),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.peak_rss_mb = 0.0
        self.peak_connections = 0
        self._watching = True
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def wait_ready(self, timeout: float = 90) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("the server exited during start-up:\n" + self.log_path.read_text()[-2000:])
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    self._watcher.start()
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit("the server did not answer in time")

    def _rss_mb(self) -> float:
        total_kb = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.getpgid(int(entry)) != self.process.pid:
                    continue
                with open(f"/proc/{entry}/status") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            total_kb += int(line.split()[1])
            except (OSError, ValueError):
                continue
        return total_kb / 1024

    def _connections(self) -> int:
        if not self.database:
            return 0
        import psycopg

        name = self.database.rsplit("/", 1)[1]
        with psycopg.connect(self.database, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        return int(row[0]) if row else 0

    def _watch(self) -> None:
        while self._watching:
            self.peak_rss_mb = max(self.peak_rss_mb, self._rss_mb())
            self.peak_connections = max(self.peak_connections, self._connections())
            time.sleep(0.5)

    def errors(self) -> dict[str, int]:
        """Exceptions the server logged, by type (the last line of each traceback)."""
        text = self.log_path.read_text(errors="replace")
        found: Counter[str] = Counter()
        for block in text.split("Traceback (most recent call last):")[1:]:
            last = next(
                (
                    line
                    for line in block.splitlines()
                    if re.match(r"^[A-Za-z_.]+(Error|Exception|Exit)\b", line)
                ),
                "unknown",
            )
            found[last[:160]] += 1
        return dict(found)

    def stop(self) -> None:
        self._watching = False
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def server_label(server: str, workers: int, threads: int) -> str:
    if server == "granian":
        return f"granian WSGI, {workers} x {threads} threads"
    if server == "granian-asgi":
        return f"granian ASGI, {workers} process(es)"
    return f"uvicorn ASGI, {workers} process(es)"


def bare_rate(
    store: Any, tokens: list[str], requests: int, *, workers: int, threads: int, server: str
) -> float:
    """Requests/s the bare app answers under the checkout's load, on the same server setup."""
    serving = Serving(store, workers=workers, threads=threads, server=server, bare=True)
    try:
        serving.wait_ready()
        run = uvloop.run(hammer_bare(serving.url, tokens, requests))
    finally:
        serving.stop()
    if run.ok != requests or run.errors:
        raise SystemExit(
            f"the bare app answered {run.ok} of {requests} requests ({run.errors} transport errors)"
        )
    return run.ok / run.seconds


def bench_store(
    kind: str, units: int, clients: int, *, workers: int, threads: int, server: str = "granian"
) -> dict[str, Any]:
    store = prepare_store(kind, f"flash_{kind}")
    setup_django(store)
    made = world(units, clients)
    figures: dict[str, Any] = {"store": kind, "server": server_label(server, workers, threads)}
    setup = {"workers": workers, "threads": threads, "server": server}
    bare_before = bare_rate(store, made["tokens"], units, **setup)
    serving = Serving(store, workers=workers, threads=threads, server=server)
    try:
        serving.wait_ready()
        backends = database_backends(kind)
        for name, once in (("nine", True), ("bulk", False)):
            cpu_before, load_before = (
                cpu_split(server_session=serving.process.pid, postgres_pids=backends),
                time.process_time(),
            )
            run = uvloop.run(hammer(serving.url, made["deals"][name], made["tokens"], once=once))
            cpu_after, load_after = (
                cpu_split(server_session=serving.process.pid, postgres_pids=backends),
                time.process_time(),
            )
            if name == "bulk" and run.ok:
                # The load generator is this process (its clients, and the watcher's few reads).
                cpu_after["load generator"], cpu_before["load generator"] = load_after, load_before
                figures["cpu_ms_per_checkout"] = {
                    part: round((cpu_after[part] - cpu_before[part]) / run.ok * 1000, 3) for part in cpu_after
                }
            figures[name] = {
                "checkouts": run.ok,
                "seconds": round(run.seconds, 3),
                "checkouts_per_s": round(run.ok / run.seconds, 1) if run.seconds else 0,
                "requests_per_s": round(len(run.latencies) / run.seconds, 1) if run.seconds else 0,
                "refusals": sum(run.refused.values()),
                "refusals_per_s": round(sum(run.refused.values()) / run.seconds, 1) if run.seconds else 0,
                "p99_ms_all": round(p99(run.latencies), 1),
                "p99_ms_checkouts": round(p99(run.ok_latencies), 1),
                "refused": run.refused,
                "transport_errors": run.errors,
                **audit(made["deals"][name], run),
            }
    finally:
        serving.stop()
    bare_after = bare_rate(store, made["tokens"], units, **setup)
    figures["bare_http_per_s"] = round((bare_before + bare_after) / 2, 1)
    figures["bare_http_runs"] = [round(bare_before, 1), round(bare_after, 1)]
    figures["ratio_to_bare_http"] = round(figures["bulk"]["checkouts_per_s"] / figures["bare_http_per_s"], 3)
    figures["server_errors"] = serving.errors()
    figures["peak_rss_mb"] = round(serving.peak_rss_mb, 1)
    figures["peak_connections"] = serving.peak_connections
    raw_sql = raw_limit(partial(raw_sql_rate, kind, store.env, units))
    figures["raw_sql_per_s"] = round(raw_sql.per_s, 1)
    figures["raw_sql_threads"] = raw_sql.threads
    figures["raw_sql_cpu_ms"] = {"client": round(raw_sql.client_ms, 4), "engine": round(raw_sql.engine_ms, 4)}
    if kind == "postgres":
        raw_lua = raw_limit(partial(raw_lua_rate, store.env["REDIS_URL"], units))
        figures["raw_lua_per_s"] = round(raw_lua.per_s, 1)
        figures["raw_lua_threads"] = raw_lua.threads
        figures["raw_lua_cpu_ms"] = {
            "client": round(raw_lua.client_ms, 4),
            "engine": round(raw_lua.engine_ms, 4),
        }
    engine = figures["raw_sql_per_s"]
    figures["ratio_to_raw_sql"] = round(figures["bulk"]["checkouts_per_s"] / engine, 3)
    if "raw_lua_per_s" in figures:
        figures["ratio_to_raw_lua"] = round(figures["bulk"]["checkouts_per_s"] / figures["raw_lua_per_s"], 3)
    return figures


def cpu_lines(figures: dict[str, Any]) -> list[str]:
    """What a checkout and a raw decrement cost in CPU, and what the target leaves a checkout."""
    spent = figures.get("cpu_ms_per_checkout")
    if not spent:
        return []
    total = sum(spent.values())
    parts = "; ".join(f"{part} {ms:.2f}" for part, ms in spent.items())
    raw = figures["raw_sql_cpu_ms"]
    raw_total = raw["client"] + raw["engine"]
    lines = [
        f"- {figures['store']}: CPU per checkout ({figures['bulk']['max_quantity']:,}-unit deal), ms: {parts}; all {total:.2f}. CPU per raw"
        f" UPDATE, ms: client {raw['client']:.3f} + engine {raw['engine']:.3f} = {raw_total:.3f}"
        + (
            f"; per raw Lua decrement: client {figures['raw_lua_cpu_ms']['client']:.3f} + Redis"
            f" {figures['raw_lua_cpu_ms']['engine']:.3f}"
            if "raw_lua_cpu_ms" in figures
            else ""
        )
        + "."
    ]
    half = figures["raw_sql_per_s"] / 2
    cores = os.cpu_count() or 1
    budget = cores / half * 1000
    lines.append(
        f"  A checkout costs {total / raw_total:.0f} times the raw UPDATE's CPU. At 50% of the raw UPDATE"
        f" ({half:,.0f} checkouts/s) the {cores} cores leave a checkout at most {budget:.2f} ms of CPU in all"
        f" (server, database, load generator): {budget / total:.0%} of what it uses now."
    )
    return lines


def render(results: list[dict[str, Any]], *, machine: str, clients: int) -> list[str]:
    servers = "; ".join(f"{figures['store']} {figures['server']}" for figures in results) or "?"
    lines = [
        f"Machine: {machine}; load average {os.getloadavg()[0]:.1f} at the end. {clients} HTTP clients"
        f" (one process, asyncio + uvloop, keep-alive) on 127.0.0.1; server: {servers}"
        " (no task worker runs during the load: tasks are only enqueued).",
        "",
        "| store | deal | checkouts | checkouts/s | refusals | refusals/s | req/s | p99 ms (all / checkouts)"
        " | oversell | double charges | raw SQL/s | raw Lua/s | bare HTTP/s | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for figures in results:
        for name in ("nine", "bulk"):
            row = figures[name]
            ratio = (
                f"{figures['ratio_to_raw_sql']:.1%} of SQL"
                + (f", {figures['ratio_to_raw_lua']:.1%} of Lua" if "ratio_to_raw_lua" in figures else "")
                + (
                    f", {figures['ratio_to_bare_http']:.1%} of bare HTTP"
                    if "ratio_to_bare_http" in figures
                    else ""
                )
                if name == "bulk"
                else "—"
            )
            lines.append(
                f"| {figures['store']} | {row['max_quantity']} units | {row['checkouts']} | {row['checkouts_per_s']}"
                f" | {row.get('refusals', '—')} | {row.get('refusals_per_s', '—')} | {row['requests_per_s']} | {row['p99_ms_all']} / {row['p99_ms_checkouts']} | {row['oversell']}"
                f" | {row['double_charges']} | {figures['raw_sql_per_s']} | {figures.get('raw_lua_per_s', '—')}"
                f" | {figures.get('bare_http_per_s', '—')} | {ratio} |"
            )
    lines += [
        "",
        "Raw baselines: the same conditional UPDATE through sqlite3 / psycopg (autocommit) and the same Lua"
        f" decrement through redis-py, until the stock is gone, the best rate of {' and '.join(map(str, RAW_THREADS))}"
        " client threads (the threads of that best are in the notes). Bare HTTP: the same"
        " clients and requests (as many as the large deal's units) answered by a trivial app with a fixed"
        " 201 on the same server setup, the mean of a run before and one after the product's.",
        "",
    ]
    for figures in results:
        bulk, nine = figures["bulk"], figures["nine"]
        best = max(figures["ratio_to_raw_sql"], figures.get("ratio_to_raw_lua", 0.0))
        errors = figures["server_errors"] or "none"
        refused = {
            key: nine["refused"].get(key, 0) + bulk["refused"].get(key, 0)
            for key in {*nine["refused"], *bulk["refused"]}
        }
        if "bare_http_per_s" in figures:
            before, after = figures["bare_http_runs"]
            lines.append(
                f"- {figures['store']}: bare HTTP {before} / {after} req/s (before / after); the raw"
                f" {'SQL' if figures['raw_sql_per_s'] >= figures.get('raw_lua_per_s', 0) else 'Lua'} rate is"
                f" {max(figures['raw_sql_per_s'], figures.get('raw_lua_per_s', 0)) / figures['bare_http_per_s']:.2f}"
                " times what the HTTP stack alone answers; checkouts are"
                f" {figures['ratio_to_bare_http']:.1%} of bare HTTP."
            )
        if "raw_sql_threads" in figures:
            lua = (
                f", the Lua decrement's with {figures['raw_lua_threads']}"
                if "raw_lua_threads" in figures
                else ""
            )
            lines.append(
                f"- {figures['store']}: the raw UPDATE's best rate came with {figures['raw_sql_threads']}"
                f" client threads{lua}."
            )
        lines += [
            f"- {figures['store']}: server peak RSS {figures['peak_rss_mb']} MiB (all processes),"
            f" peak database connections {figures['peak_connections'] or 'n/a (SQLite)'};"
            f" refusals {refused}; transport errors {nine['transport_errors'] + bulk['transport_errors']};"
            f" server errors {errors}; ledger sums to zero: {bool(bulk['ledger_ok'] and nine['ledger_ok'])}.",
            f"  Targets: oversell 0 {'met' if not (bulk['oversell'] or nine['oversell']) else 'NOT met'};"
            f" double charges 0 {'met' if not (bulk['double_charges'] or nine['double_charges']) else 'NOT met'};"
            f" >= 50% of the raw engine {'met' if best >= 0.5 else 'NOT met'} ({best:.1%});"
            f" peak RSS <= {RSS_LIMIT_MB} MiB {'met' if figures['peak_rss_mb'] <= RSS_LIMIT_MB else 'NOT met'}.",
        ]
        lines += cpu_lines(figures)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes (default: 1 on sqlite, what `weituan serve` runs without Redis; 2 on postgres)",
    )
    parser.add_argument(
        "--server",
        choices=("granian", "granian-asgi", "uvicorn"),
        help="granian (WSGI, --threads per process), granian-asgi or uvicorn (default: granian on sqlite,"
        " uvicorn on postgres)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="threads (and database connections) per process (default: as `weituan serve --server granian`"
        " chooses, 1 on sqlite, 4 on postgres)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one store's figures as JSON (used internally)"
    )
    parser.add_argument("--render", nargs="*", help="write RESULTS.md from figures saved by --json runs")
    args = parser.parse_args()
    machine = machine_line()
    kinds = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    results = []
    if args.render:
        import json

        for path in args.render:
            with open(path) as saved:
                results.append(json.loads(saved.read().strip().splitlines()[-1]))
        kinds = []
    for kind in kinds:
        workers = args.workers or (1 if kind == "sqlite" else 2)
        threads = args.threads or (1 if kind == "sqlite" else 4)  # as `weituan.cli.serving_threads`
        server = args.server or ("granian" if kind == "sqlite" else "uvicorn")
        # Django is set up once per process, so each store runs in a child process of its own.
        if len(kinds) > 1:
            import json

            output = subprocess.run(
                [sys.executable, "-m", "bench.flash_sale.run", "--store", kind, "--units", str(args.units),
                 "--clients", str(args.clients), "--workers", str(workers), "--threads", str(threads),
                 "--server", server, "--json"],
                stdout=subprocess.PIPE, text=True, check=True,
            ).stdout  # fmt: skip
            results.append(json.loads(output.strip().splitlines()[-1]))
        else:
            results.append(
                bench_store(
                    kind,
                    args.units,
                    args.clients,
                    workers=workers,
                    threads=threads,
                    server=server,
                )
            )
    if args.json:
        import json

        print(json.dumps(results[0]))
        return 0
    lines = render(results, machine=machine, clients=args.clients)
    command = " ".join(["python -m bench.flash_sale.run", *sys.argv[1:]])
    record("flash_sale", command, lines, {"results": results})
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
