"""Tracking benchmark: /s/<code> redirects against a bare ASGI redirect, and event ingestion, with loss counts.

    python bench/tracking/run.py [--seconds 10] [--rounds 2] [--connections 50] [--events 300000]

Everything runs on 127.0.0.1: two uvicorn servers of one process each (uvloop + httptools, as `weituan
serve` runs), the bare app and Weituan on SQLite with embedded chDB (in its store process) in a
temporary data dir, driven by wrk in turn for `--rounds` rounds of `--seconds` each; then API
ingestion; then the write buffer in this process. Reports the peak RSS (VmHWM) of the server and of
its store process, and writes bench/tracking/results.json.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def wrk(port: int, codes: list[str], seconds: int, connections: int) -> dict:
    script = HERE / "wrk_redirect.lua"
    listing = ",".join(f'"{code}"' for code in codes)
    script.write_text(
        f"local codes = {{{listing}}}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        '  return wrk.format("GET", "/s/" .. codes[(i % #codes) + 1], '
        f'{{["User-Agent"] = "{BROWSER}", ["Cookie"] = "wt_vid=benchvisitor" .. (i % 20000)}})\n'
        "end\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    script.unlink()
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": total,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "non_3xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def peak_rss_mib(pid: int) -> float:
    """The peak resident set of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def children(pid: int) -> list[int]:
    """The child processes of `pid` (started by any of its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found.extend(int(child) for child in task.read_text().split())
    return found


def cpu_ticks(pid: int) -> int:
    """CPU time (clock ticks) used so far by a process and its children."""
    total = 0
    for proc in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def thread_ticks(pid: int) -> tuple[int, int]:
    """CPU time (clock ticks) of a process's main thread (the event loop) and of its other threads."""
    main = others = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        if task.name == str(pid):
            main = ticks
        else:
            others += ticks
    return main, others


def cpu_parts(pid: int) -> dict[str, int]:
    """CPU ticks so far of the serving thread, the server's other threads and its child processes (the store)."""
    main, others = thread_ticks(pid)
    return {"serving_thread": main, "other_threads": others, "store_process": cpu_ticks(pid) - main - others}


def per_request_us(before: dict[str, int], after: dict[str, int], requests: int) -> dict[str, float]:
    """CPU per answered request, in microseconds, of each part between two `cpu_parts` readings."""
    tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
    return {name: round((after[name] - before[name]) * tick_us / max(requests, 1), 2) for name in after}


def settle(pid: int, flush_interval: float = 5.0, timeout: float = 60.0) -> float:
    """Wait for the server's buffered clicks to be flushed and its store to go quiet; returns the seconds waited."""
    started = time.time()
    time.sleep(flush_interval + 0.5)
    while time.time() - started < timeout:
        before = cpu_ticks(pid)
        time.sleep(0.5)
        if cpu_ticks(pid) - before <= 2:
            break
    return round(time.time() - started, 1)


def combined(runs: list[dict], seconds: int) -> dict:
    """Several wrk runs as one: total requests over total time, the worst p99."""
    requests = sum(run["requests"] for run in runs)
    return {
        "requests": requests,
        "rps": round(sum(run["rps"] for run in runs) / len(runs), 2),
        "p50_ms": max(run["p50_ms"] for run in runs),
        "p99_ms": max(run["p99_ms"] for run in runs),
        "non_3xx": sum(run["non_3xx"] for run in runs),
        "socket_errors": sum(run["socket_errors"] for run in runs),
        "runs": len(runs),
    }


def start(cmd: list[str], env: dict, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)


def warm_links(port: int, codes: list[str]) -> int:
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"User-Agent": BROWSER}) as client:
        for code in codes:
            assert client.get(f"/s/{code}").status_code == 302
    return len(codes)


def http_ingest(port: int, key: str, seconds: float, batch: int, clients: int) -> dict:
    import httpx
    import orjson

    accepted = 0
    sent = 0
    lock = threading.Lock()
    deadline = time.time() + seconds
    now = datetime.now(UTC).isoformat()

    def worker(worker_id: int) -> None:
        nonlocal accepted, sent
        headers = {"X-Api-Key": key, "Content-Type": "application/json"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            n = 0
            while time.time() < deadline:
                events = [
                    {"event": "pageview", "ts": now, "visitor_id": f"hv{worker_id}-{(n + i) % 5000}",
                     "event_id": f"h{worker_id}-{n + i}", "url": "https://shop.example/p/1",
                     "referrer": "https://weibo.com/"}
                    for i in range(batch)
                ]  # fmt: skip
                n += batch
                body = orjson.dumps({"events": events})  # the load generator shares the two cores
                response = client.post("/api/v1/events", content=body, headers=headers)
                response.raise_for_status()
                with lock:
                    accepted += response.json()["accepted"]
                    sent += batch

    started = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    return {
        "sent": sent,
        "accepted": accepted,
        "seconds": round(elapsed, 2),
        "events_per_s": round(accepted / elapsed),
    }


def buffer_ingest(count: int) -> dict:
    from weituan.tracking.buffer import WriteBuffer
    from weituan.tracking.rows import event_row
    from weituan.tracking.services.ingest import events_store
    from weituan.tracking.store import analytics_store

    store = analytics_store()
    before = int(store.scalar("SELECT count() FROM events WHERE origin = 'bench-buffer'") or 0)
    buffer = WriteBuffer(lambda rows: events_store(rows), spill_dir=None)  # the server's batch sizes
    now = datetime.now(UTC)
    started = time.perf_counter()
    for i in range(count):
        buffer.add(
            event_row("post_impression", now, f"bv{i % 50_000}", post_id=i % 1000 + 1, origin="bench-buffer")
        )
    buffer.stop()
    elapsed = time.perf_counter() - started
    stored = int(store.scalar("SELECT count() FROM events WHERE origin = 'bench-buffer'") or 0) - before
    return {"accepted": buffer.stats().accepted, "stored": stored, "seconds": round(elapsed, 2),
            "events_per_s": round(count / elapsed)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="bare app and Weituan are measured in turn, this many times each",
    )
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="weituan-bench-tracking-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL")}
    env.update(WEITUAN_DATA_DIR=str(data_dir), WEITUAN_PROFILE="demo", WEITUAN_DEBUG="0",
               WEITUAN_EMBEDDED_WORKER="0", DJANGO_SETTINGS_MODULE="weituan.settings",
               WEITUAN_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT / "src"))  # fmt: skip
    os.environ.update(env)
    for name in ("DATABASE_URL", "REDIS_URL", "CLICKHOUSE_URL"):
        os.environ.pop(name, None)
    python = sys.executable
    subprocess.run([python, "-m", "weituan.cli", "migrate"], env=env, check=True, cwd=ROOT)
    import django

    django.setup()
    from weituan.tracking import facade
    from weituan.tracking.services.keys import api_key_issue

    codes = [
        facade.short_link_for_share(sharer_id=1 + i % 50, post_id=10_000 + i, target_url=f"https://weituan.example/d/{i}",
                                    hop_depth=i % 4).code
        for i in range(args.links)
    ]  # fmt: skip
    key = api_key_issue(name="bench").key
    results: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "cores": os.cpu_count(),
                      "server": "uvicorn, uvloop + httptools, 1 process, for both", "load_avg_start": os.getloadavg()}  # fmt: skip

    bare_port, port = free_port(), free_port()
    bare = start([python, "-m", "uvicorn", "--app-dir", str(HERE), "bare_app:app", "--host", "127.0.0.1",
                  "--port", str(bare_port), "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
                  "--http", "httptools"], env, bare_port)  # fmt: skip
    stats_path = data_dir / "buffer-stats.json"
    app = start([python, str(HERE / "serve.py"), str(port), str(stats_path)], env, port)
    warm = {"requests": warm_links(port, codes)}  # every link resolved once: the run measures cached links
    wrk(bare_port, codes, 2, args.connections)  # warm-up
    client_counted = [wrk(port, codes, 2, args.connections)]  # every /s/ run, for the clients' own count
    settle(app.pid)
    # The two servers are measured in turn, so a change in the machine's load hits both alike. Before
    # each bare measurement Weituan's last flush (and the store's merges) must be over: its work is
    # never done while the baseline is measured.
    rounds = []
    # CPU per request of each part: during the round, and including what the clicks cost after it (the
    # last flush and the store's merges, up to the end of the settle).
    for _ in range(args.rounds):
        bare_before = {"server": cpu_ticks(bare.pid)}
        bare_run = wrk(bare_port, codes, args.seconds, args.connections)
        bare_cpu = per_request_us(bare_before, {"server": cpu_ticks(bare.pid)}, bare_run["requests"])
        before = cpu_parts(app.pid)
        redirect_run = wrk(port, codes, args.seconds, args.connections)
        client_counted.append(redirect_run)
        during = per_request_us(before, cpu_parts(app.pid), redirect_run["requests"])
        settle_s = settle(app.pid)
        rounds.append({"bare": bare_run, "redirect": redirect_run,
                       "ratio": round(redirect_run["rps"] / bare_run["rps"], 3), "settle_s": settle_s,
                       "cpu_us_per_request": {"bare_server": bare_cpu["server"], "during_round": during,
                                              "with_settle": per_request_us(before, cpu_parts(app.pid),
                                                                            redirect_run["requests"])}})  # fmt: skip
    stop(bare)
    results["rounds"] = rounds
    results["bare_asgi"] = combined([r["bare"] for r in rounds], args.seconds)
    results["redirect"] = combined([r["redirect"] for r in rounds], args.seconds)
    results["redirect"]["warmup_requests"] = warm["requests"]
    results["http_ingest"] = http_ingest(port, key, args.seconds, batch=2000, clients=4)
    results["server_peak_rss_mib"] = peak_rss_mib(app.pid)
    results["store_process_peak_rss_mib"] = sum(peak_rss_mib(child) for child in children(app.pid))
    stop(app)
    server_buffer = json.loads(stats_path.read_text())

    from weituan.tracking.store import analytics_store

    store = analytics_store()
    clicks_stored = int(store.scalar("SELECT count() FROM events WHERE event = 'link_click'") or 0)
    api_stored = int(store.scalar("SELECT count() FROM events WHERE origin = 'api'") or 0)
    answered = results["redirect"]["requests"]
    results["redirect"].update(
        ratio_to_bare=round(results["redirect"]["rps"] / results["bare_asgi"]["rps"], 3),
        clicks_accepted=server_buffer["accepted"], clicks_stored=clicks_stored,
        clicks_lost=server_buffer["accepted"] - clicks_stored, measured_responses=answered,
    )  # fmt: skip
    # The clients' own count, not only the server's: every redirect they received (the warm-up's
    # included) must be a stored click. A run's last requests may be answered after wrk stops counting,
    # so the store may hold up to one per connection per run more, never fewer.
    received = warm["requests"] + sum(run["requests"] - run["non_3xx"] for run in client_counted)
    slack = args.connections * len(client_counted)
    results["redirect"].update(
        redirects_received_by_clients=received,
        clicks_missing_from_store=max(0, received - clicks_stored),
        clicks_stored_beyond_client_count=clicks_stored - received,
        client_count_slack=slack,
        client_count_consistent=0 <= clicks_stored - received <= slack,
    )
    results["http_ingest"].update(stored=api_stored, lost=results["http_ingest"]["accepted"] - api_stored)
    results["buffer_ingest"] = buffer_ingest(args.events)
    results["buffer_ingest"]["lost"] = (
        results["buffer_ingest"]["accepted"] - results["buffer_ingest"]["stored"]
    )
    results["load_avg_end"] = os.getloadavg()
    (HERE / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
