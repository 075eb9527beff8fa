"""Home-timeline benchmark: API reads/s and latency under 50 clients, against the raw store read (and the
same page answered by a bare app on the same server, the HTTP stack's own cost); posting
over HTTP with asynchronous fan-out, against a raw write of post rows; fan-out speed; the server's peak
memory.

    python bench/timeline/run.py --store postgres --scale full --keep
    python bench/timeline/run.py --store postgres --scale full --reuse /tmp/weituan-bench-timeline-XXXX
    python bench/timeline/run.py --store sqlite --scale small

Scales: small = 10k users / 500k follows / 100k posts; full = 100k users / 5M follows / 1M posts.
"""

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (
    PG_ADMIN_URL,
    REDIS_BENCH_URL,
    SERVERS,
    Server,
    Store,
    bench_database,
    cpu_spent,
    cpu_split,
    database_backends,
    discard_store,
    machine_line,
    prepare_store,
    record,
    run_wrk,
    setup_django,
)

SCALES = {
    "tiny": dict(users=2_000, follows=60_000, posts=20_000),
    "small": dict(users=10_000, follows=500_000, posts=100_000),
    "full": dict(users=100_000, follows=5_000_000, posts=1_000_000),
}


def pick_readers(count: int, seed: int) -> list[int]:
    from weituan.microblog.models import AccountStats

    candidates = list(
        AccountStats.objects.filter(following_count__gte=10)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    return random.Random(seed).sample(candidates, min(count, len(candidates)))


# The followed big authors' newest entries down to the stored page's floor, in one round trip: the
# home timeline's first `count` members, then each author index's members above the last of them.
_RAW_MERGE_LUA = """
local count = tonumber(ARGV[1])
local home = redis.call('ZREVRANGEBYLEX', KEYS[1], '+', '(0', 'LIMIT', 0, count)
local floor = '(0'
if #home == count then floor = '(' .. home[#home] end
local out = {}
if #home > 0 then out[1] = table.concat(home, ',') end
for index = 2, #KEYS do
  local members = redis.call('ZREVRANGEBYLEX', KEYS[index], '+', floor, 'LIMIT', 0, count)
  if #members > 0 then out[#out + 1] = table.concat(members, ',') end
end
return table.concat(out, ',')
"""


class RawReader:
    """The store read the home endpoint wraps, written by hand: the reader's stored timeline and, as
    the hybrid fan-out requires, the newest posts of the followed authors above the fan-out threshold
    (never fanned out, merged at read), down to where the stored page ends; the page's 20 ids; then the
    20 posts with their authors by id in one query. No token, block, mute, visibility or viewer-flag
    check, no ORM compiling, no serialising: the floor under any implementation of the endpoint.
    `merged=False` leaves the big authors out (the stored timeline alone, which is not the page a
    reader following big authors sees)."""

    def __init__(self, store: Store, *, merged: bool) -> None:
        from django.conf import settings
        from django.db import connection

        from weituan.accounts.models import User
        from weituan.microblog.models import AccountStats, Follow, Post, PostKind
        from weituan.microblog.timelines.store import timeline_store

        self.merged = merged
        self.timelines = timeline_store()
        q = connection.ops.quote_name
        posts, users, follows, stats = (q(m._meta.db_table) for m in (Post, User, Follow, AccountStats))
        self.posts_sql = f"SELECT p.*, u.* FROM {posts} p JOIN {users} u ON u.id = p.author_id WHERE p.id IN "
        big = f"SELECT user_id FROM {stats} WHERE followers_count > {int(settings.FANOUT_FOLLOWER_THRESHOLD)}"
        self.redis = store.kind == "postgres"
        if self.redis:
            from weituan.core.redis import get_redis
            from weituan.microblog.timelines.authors import author_key
            from weituan.microblog.timelines.store import home_key

            self.client = get_redis()
            self.script = self.client.register_script(_RAW_MERGE_LUA)
            self.home_key, self.author_key = home_key, author_key
            self.big_sql = (
                f"SELECT followee_id, NULL FROM {follows} WHERE follower_id = %s"
                f" AND followee_id = ANY(ARRAY({big}))"
            )
        else:
            # After the stored page: only the big authors whose newest post is at or above the entry it
            # ends on (the others cannot reach the page), found among the reader's follows, are walked
            # (the posts table's (author, id) index, newest first).
            self.big_sql = (
                f"SELECT f.followee_id, s.newest_post_id FROM {follows} f JOIN {stats} s"
                f" ON s.user_id = f.followee_id WHERE f.follower_id = %s AND f.followee_id IN ({big}"
                " AND (newest_post_id IS NULL OR newest_post_id >= %s))"
            )
            self.walk_sql = (
                f"SELECT * FROM (SELECT id FROM {posts} WHERE author_id = %s AND kind <> "
                f"'{PostKind.COMMENT.value}' AND deleted_at IS NULL AND id > %s ORDER BY id DESC LIMIT 20)"
            )

    def page(self, cursor: Any, user_id: int) -> list[int]:
        from weituan.microblog.timelines.store import Bounds, entries_of_joined

        if not self.merged:
            return [entry.post_id for entry in self.timelines.read(user_id, Bounds(), 20) or []]
        if self.redis:
            cursor.execute(self.big_sql, [user_id])
            authors = cursor.fetchall()
            keys = [self.home_key(user_id), *(self.author_key(author_id) for author_id, _ in authors)]
            joined = self.script(keys=keys, args=[20])
            ids = {entry.post_id for entry in entries_of_joined(joined.decode() if joined else "")}
            return sorted(ids, reverse=True)[:20]
        stored = [entry.post_id for entry in self.timelines.read(user_id, Bounds(), 20) or []]
        floor = stored[-1] if len(stored) == 20 else 0
        cursor.execute(self.big_sql, [user_id, floor])
        walked = [author_id for author_id, newest in cursor.fetchall() if newest is None or newest > floor]
        if not walked:
            return stored
        cursor.execute(
            " UNION ALL ".join([self.walk_sql] * len(walked)),
            [value for author_id in walked for value in (author_id, floor)],
        )
        return sorted({*stored, *(row[0] for row in cursor.fetchall())}, reverse=True)[:20]

    def read(self, cursor: Any, user_id: int) -> int:
        ids = self.page(cursor, user_id)
        cursor.execute(self.posts_sql + "(" + (", ".join(["%s"] * len(ids)) or "NULL") + ")", ids)
        return len(cursor.fetchall())


def raw_worker(args: tuple[Store, list[int], float, bool]) -> tuple[int, float, float]:
    """`RawReader` reads for `seconds` in this process. Returns the reads done, this process's CPU
    seconds over them and its database backend's (0 on SQLite)."""
    store, readers, seconds, merged = args
    setup_django(store)
    from django.db import connection

    from bench.common import postgres_backend_cpu

    reader = RawReader(store, merged=merged)
    done = 0
    with connection.cursor() as cursor:
        backend_before = postgres_backend_cpu(connection) or 0.0
        before = os.times()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            reader.read(cursor, readers[done % len(readers)])
            done += 1
        after = os.times()
    backend = (postgres_backend_cpu(connection) or 0.0) - backend_before
    return done, after.user + after.system - before.user - before.system, backend


def raw_pages_checked(store: Store, readers: list[int]) -> tuple[int, int]:
    """(readers whose raw merged page is the endpoint's page, readers checked): the raw read must
    produce the page it is compared with."""
    from django.db import connection

    from weituan.microblog.timelines.home import home_timeline_ids

    reader = RawReader(store, merged=True)
    with connection.cursor() as cursor:
        same = sum(reader.page(cursor, uid) == home_timeline_ids(uid, limit=20) for uid in readers)
    return same, len(readers)


def measure_raw(
    store: Store, readers: list[int], processes: int, seconds: float, *, merged: bool = True
) -> tuple[float, dict[str, float]]:
    """Raw reads per second, and CPU milliseconds per raw read by part (the reading processes, their
    database backends, Redis)."""
    redis_before = cpu_split(server_session=-1, postgres_pids=set)["redis"]
    # Fresh interpreters: forked ones would share this process's pooled database connections.
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(
            pool.map(raw_worker, [(store, readers[i::processes], seconds, merged) for i in range(processes)])
        )
    redis = cpu_split(server_session=-1, postgres_pids=set)["redis"] - redis_before
    reads = sum(done for done, _, _ in results)
    per_read = {
        "reader": sum(own for _, own, _ in results),
        "postgres": sum(backend for _, _, backend in results),
        "redis": redis,
    }
    per_read = {name: spent / reads * 1000 if reads else 0.0 for name, spent in per_read.items()}
    per_read["all"] = sum(per_read.values())
    # Each process ran `seconds` of reads after its own start-up; rate per process-second, summed.
    return reads / seconds, per_read


def raw_write_worker(args: tuple[Store, int, float]) -> int:
    """The floor under posting: one durable INSERT of a post row per commit (autocommit), from
    `threads` threads of one process; no token, limit, counters, topic, task, index or HTTP."""
    store, threads, seconds = args
    setup_django(store)
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from weituan.microblog.models import Post, PostKind
    from weituan.microblog.services.post_rows import post_insert

    author_id = pick_readers(1, seed=11)[0]
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> int:
        done = 0
        try:
            while time.perf_counter() < deadline:
                post_insert(
                    Post(
                        author_id=author_id, kind=PostKind.ORIGINAL, text=f"raw {os.getpid()}-{index}-{done}"
                    )
                )
                done += 1
        finally:
            connection.close()
        return done

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(loop, range(threads)))


def measure_raw_writes(store: Store, processes: int, clients: int, seconds: float) -> float:
    """Post rows written per second by `clients` threads over `processes` fresh processes. The rows are
    deleted again afterwards: bare rows without a fan-out job, left in the world, would be found by the
    task worker's sweep of posts without one and delivered during a later posting load, and they would
    age the world (and its one author's timeline) by tens of thousands of posts a run."""
    from django.utils import timezone

    from weituan.core.ids import id_at
    from weituan.microblog.models import Post

    first_id = id_at(timezone.now())
    per_process = max(1, clients // processes)
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        counts = list(pool.map(raw_write_worker, [(store, per_process, seconds)] * processes))
    written = Post.objects.filter(
        id__gte=first_id, author_id=pick_readers(1, seed=11)[0], text__startswith="raw "
    )
    written._raw_delete(written.db)  # bare rows: nothing refers to them, no signal to send
    return sum(counts) / seconds


def page_capture(url: str, token: str, path: Path) -> Path:
    """One real home page (body, and the headers a client sees) from the running product, for the bare
    baseline to answer with."""
    request = urllib.request.Request(
        url + "/api/v1/timelines/home?limit=20", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
        skipped = {"content-length", "date", "server", "connection"}
        headers = [(name, value) for name, value in response.getheaders() if name.lower() not in skipped]
    path.write_text(json.dumps({"body": body, "headers": headers}))
    return path


def measure_bare(
    store: Store,
    page_file: Path,
    token_file: Path,
    *,
    server_kind: str,
    workers: int,
    threads: int,
    clients: int,
    seconds: int,
) -> dict:
    """The home page's load against `bare_app` on the same server setup: requests/s, and CPU
    milliseconds per request of the server and the load generator."""
    script = Path(__file__).with_name("home.lua")
    env = {"WT_TOKENS": str(token_file)}
    with Server(
        store,
        workers=workers,
        server=server_kind,
        threads=threads,
        app="bench.timeline.bare_app:app",
        wsgi_app="bench.timeline.bare_app:application",
        extra_env={"WT_BARE_PAGE": str(page_file)},
    ) as server:
        server.wait_ready()
        run_wrk(server.url + "/", connections=clients, seconds=3, script=script, env=env)
        before = cpu_split(server_session=server.process.pid, postgres_pids=set)
        load = run_wrk(server.url + "/", connections=clients, seconds=seconds, script=script, env=env)
        after = cpu_split(server_session=server.process.pid, postgres_pids=set)
    cpu_ms = {
        name: (after[name] - before[name]) / load.requests * 1000
        for name in ("server", "load generator")
        if load.requests
    }
    cpu_ms["all"] = sum(cpu_ms.values())
    return {"rps": load.rps, "p99_ms": load.p99_ms, "errors": load.errors, "cpu_ms": cpu_ms}


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(largest, summed) peak resident memory in MiB of process `pid` and its descendants (VmHWM)."""
    peaks: list[float] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = " ".join(
                child.read_text() for child in Path(f"/proc/{current}/task").glob("*/children")
            )
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
        pending.extend(int(child) for child in children.split())
    return (max(peaks, default=0.0), sum(peaks))


def _statistics_renewed() -> None:
    """ANALYZE, when the server's autovacuum is off (as on the benchmark machine): a live server's
    autovacuum renews a table's statistics once a tenth of it has changed. Without that, the task
    runs' table, grown by earlier loads from the empty one the statistics describe, is planned as a
    few rows, and each claim of a run by the worker reads the whole table through the wrong index."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "off":
            cursor.execute("ANALYZE")


def measure_posting(
    store: Store,
    token_file: Path,
    *,
    server_kind: str,
    workers: int,
    threads: int,
    clients: int,
    seconds: int,
) -> dict:
    """Posts/s over POST /api/v1/statuses with fan-out left to a task worker process (asynchronous, as
    served), then how long the worker took to finish the fan-out of every post made."""
    from django.utils import timezone

    from weituan.core.ids import id_at
    from weituan.microblog.models import Post
    from weituan.microblog.timelines.fanout import FANOUT_FINISHED
    from weituan.microblog.timelines.models import FanoutJob

    if store.kind == "postgres":
        _statistics_renewed()
    first_id = id_at(timezone.now())
    env = {**os.environ, **store.env}
    worker = subprocess.Popen(
        [sys.executable, "-m", "weituan.cli", "worker"], env=env, start_new_session=True
    )
    backends = database_backends(store.kind)
    try:
        with Server(store, workers=workers, server=server_kind, threads=threads) as server:
            server.wait_ready()
            cpu_before = cpu_split(
                server_session=server.process.pid, postgres_pids=backends, worker_session=worker.pid
            )
            load = run_wrk(
                server.url + "/",
                connections=clients,
                seconds=seconds,
                script=Path(__file__).with_name("post.lua"),
                env={"WT_TOKENS": str(token_file)},
            )
            rss = peak_rss_mib(server.process.pid)
            load_ended = time.perf_counter()
            made = Post.objects.filter(id__gte=first_id).count()
            finished = 0
            deadline = load_ended + 180
            while time.perf_counter() < deadline:
                finished = FanoutJob.objects.filter(post_id__gte=first_id, state__in=FANOUT_FINISHED).count()
                if finished >= made:
                    break
                time.sleep(0.5)
            drained_s = time.perf_counter() - load_ended
            # Everything a post cost, its fan-out included: taken once the worker has delivered them all.
            cpu_after = cpu_split(
                server_session=server.process.pid, postgres_pids=backends, worker_session=worker.pid
            )
        delivered = sum(FanoutJob.objects.filter(post_id__gte=first_id).values_list("delivered", flat=True))
        # Posts whose fan-out never finished, and where their job stood, so a shortfall can be traced.
        states = dict(FanoutJob.objects.filter(post_id__gte=first_id).values_list("post_id", "state"))
        unfinished = {
            str(post_id): states.get(post_id, "no job")
            for post_id in Post.objects.filter(id__gte=first_id).values_list("id", flat=True)
            if states.get(post_id) not in FANOUT_FINISHED
        }
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    return {
        "load": load.__dict__,
        "posts_per_s": load.rps,
        "posts_made": made,
        "fanout_finished": finished,
        "fanout_entries": delivered,
        "fanout_drained_after_s": drained_s,
        "fanout_unfinished": unfinished,
        "peak_rss_mib": rss,
        "cpu_per_post_ms": cpu_spent(cpu_before, cpu_after, made) if made else "",
        "cpu_all_per_post_ms": (
            sum(cpu_after[name] - cpu_before[name] for name in cpu_after) / made * 1000 if made else 0.0
        ),
    }


def measure_fanout(world_celebrity: int) -> dict:
    """Deliver one post by the celebrity (followed by every account) to every follower's timeline."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from weituan.microblog.models import Follow
    from weituan.microblog.services.posts import post_create
    from weituan.microblog.timelines.fanout import fanout_deliver
    from weituan.microblog.timelines.models import TimelineState
    from weituan.microblog.timelines.store import timeline_store

    settings.FANOUT_FOLLOWER_THRESHOLD = 10**9  # this measurement is of fan-out on write
    followers = list(Follow.objects.filter(followee_id=world_celebrity).values_list("follower_id", flat=True))
    now = timezone.now()
    # Who reads their timeline, as it was, put back afterwards: every follower of the celebrity is made
    # a reader here, and a later run on this world (--reuse) would otherwise post to active followers
    # by the tens of thousands, a heavier fan-out than the first run's.
    readers = list(TimelineState.objects.values_list("user_id", "last_read_at", "built_at"))
    TimelineState.objects.all().delete()
    TimelineState.objects.bulk_create(
        [TimelineState(user_id=uid, last_read_at=now, built_at=now) for uid in [world_celebrity, *followers]],
        batch_size=5_000,
    )
    try:
        store = timeline_store()
        for uid in followers:
            store.rebuild(uid, [])
        from weituan.accounts.models import User

        celebrity = User.objects.get(pk=world_celebrity)
        with transaction.atomic():
            post = post_create(author=celebrity, text="秒杀开始！#双十一#")
        started = time.perf_counter()
        written = fanout_deliver(post_id=post.id)
        seconds = time.perf_counter() - started
    finally:
        TimelineState.objects.all().delete()
        TimelineState.objects.bulk_create(
            [TimelineState(user_id=uid, last_read_at=read, built_at=built) for uid, read, built in readers],
            batch_size=5_000,
        )
    return {
        "followers": len(followers),
        "entries": written,
        "seconds": seconds,
        "entries_per_s": written / seconds,
    }


def reused_store(kind: str, data_dir: Path) -> Store:
    """The store a run with --keep left: its data directory and, for PostgreSQL, its database and Redis."""
    if kind == "sqlite" and not (data_dir / "weituan.sqlite3").exists():
        raise SystemExit(f"no kept world in {data_dir}")
    if not (data_dir / "tokens.txt").exists():
        raise SystemExit(f"no kept world in {data_dir}")
    env = {
        "WEITUAN_DATA_DIR": str(data_dir),
        "WEITUAN_PROFILE": "demo",
        "WEITUAN_LOG_LEVEL": "ERROR",
        "WEITUAN_RATE_LIMIT_WRITES": "100000000",
    }
    if kind == "postgres":
        env["DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + bench_database("timeline")
        env["REDIS_URL"] = REDIS_BENCH_URL
        env["WEITUAN_CONN_MAX_AGE"] = "600"
    return Store(kind=kind, data_dir=data_dir, env=env)


def world_found(spec):
    """The facts of a kept world, read back from its database."""
    from weituan.microblog.models import AccountStats, Follow, Post
    from weituan.simulate.world import World

    world = World(spec=spec)
    world.user_ids = list(AccountStats.objects.order_by("-followers_count").values_list("user_id", flat=True))
    world.follows = Follow.objects.count()
    world.posts = Post.objects.count()
    world.seconds = {"reused": 0.0}
    return world


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _targets(
    store: str, rps: float, p99_ms: float, ratio: float, fanout: dict, posting: dict | None, rss_mib: float
) -> list[str]:
    wanted_rps = 1_000 if store == "postgres" else 500
    found = [
        f"API >= {wanted_rps:,} req/s {_met(rps >= wanted_rps)}",
        f"API / raw >= 50% {_met(ratio >= 0.5)}",
        f"fan-out >= 50,000 entries/s {_met(fanout['entries_per_s'] >= 50_000)}",
    ]
    if store == "postgres":
        found.insert(1, f"p99 <= 100 ms {_met(p99_ms <= 100)}")
    if fanout["followers"] >= 100_000 - 1:
        found.append(f"100k-follower post delivered in <= 2 s {_met(fanout['seconds'] <= 2)}")
    if posting is not None:
        found.append(f"posting >= 500 posts/s {_met(posting['posts_per_s'] >= 500)}")
    found.append(f"server RSS <= 1 GiB per process {_met(rss_mib <= 1024)}")
    return found


def _server_shape(server: str, workers: int, threads: int) -> str:
    shape = (
        f"WSGI, {workers} process(es) x {threads} threads"
        if server == "granian"
        else f"ASGI, {workers} process(es)"
    )
    return shape


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes (default: 1 on sqlite, what `weituan serve` runs without Redis; 2 on postgres)",
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="granian",
        help="granian (the WSGI app on threads, `weituan serve --server granian`), granian-asgi or "
        "uvicorn (the ASGI app, `weituan serve --server uvicorn`); both apps answer the home timeline "
        "in front of Django (weituan.mastodon.api_timelines_fast)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="threads per granian WSGI process (default: as `weituan serve` chooses, 4 on postgres, 1 on"
        " sqlite)",
    )
    parser.add_argument("--post-clients", type=int, default=10, help="clients of the posting load")
    parser.add_argument(
        "--post-seconds", type=int, default=20, help="length of the posting load (0: no posting load)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the world (data directory, database) after the run"
    )
    parser.add_argument(
        "--reuse",
        metavar="DIR",
        help="measure again on a world kept by an earlier run with --keep (its data directory; on "
        "postgres the database and Redis it used too)",
    )
    args = parser.parse_args()
    if not 1 <= args.seconds <= 300 or not 1 <= args.clients <= 1000:
        raise SystemExit("keep --seconds within 1..300 and --clients within 1..1000")
    if not 0 <= args.post_seconds <= 300 or not 1 <= args.post_clients <= 1000:
        raise SystemExit("keep --post-seconds within 0..300 and --post-clients within 1..1000")
    workers = args.workers or (2 if args.store == "postgres" else 1)
    if args.threads is None:
        args.threads = 4 if args.store == "postgres" else 1  # as `weituan.cli.serving_threads`
    command = "python bench/timeline/run.py " + " ".join(sys.argv[1:])
    machine = machine_line()

    store = (
        reused_store(args.store, Path(args.reuse)) if args.reuse else prepare_store(args.store, "timeline")
    )
    setup_django(store)
    from weituan.accounts.models import User
    from weituan.accounts.tokens import access_token_issue
    from weituan.microblog.timelines.home import home_timeline_ids
    from weituan.simulate.world import WorldSpec, world_build

    if args.reuse:
        world = world_found(WorldSpec(**SCALES[args.scale]))
    else:
        print(f"building the {args.scale} world on {args.store} ...", file=sys.stderr)
        world = world_build(WorldSpec(**SCALES[args.scale]), progress=True)
        if args.store == "postgres":
            # What autovacuum does soon after a bulk load on a live server: without statistics the
            # planner takes a million-row table for a small one, and without the visibility map every
            # index-only scan (a reader's follows) still visits the table.
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
    readers = pick_readers(args.readers, seed=7)
    tokens = [access_token_issue(user=User(pk=uid))[0] for uid in readers]
    token_file = store.data_dir / "tokens.txt"
    token_file.write_text("\n".join(tokens) + "\n")
    for uid in readers:  # the readers are active users: their timelines are built before the run
        home_timeline_ids(uid, limit=20)

    from django.db import connections

    connections.close_all()
    with Server(store, workers=workers, server=args.server, threads=args.threads) as server:
        server.wait_ready()
        script = Path(__file__).with_name("home.lua")
        run_wrk(
            server.url + "/",
            connections=args.clients,
            seconds=3,
            script=script,
            env={"WT_TOKENS": str(token_file)},
        )
        backends = database_backends(store.kind)
        cpu_before = cpu_split(server_session=server.process.pid, postgres_pids=backends)
        load = run_wrk(
            server.url + "/",
            connections=args.clients,
            seconds=args.seconds,
            script=script,
            env={"WT_TOKENS": str(token_file)},
        )
        cpu_after = cpu_split(server_session=server.process.pid, postgres_pids=backends)
        cpu_per_read = cpu_spent(cpu_before, cpu_after, load.requests)
        api_cpu_ms = sum(cpu_after[name] - cpu_before[name] for name in cpu_after) / load.requests * 1000
        read_rss = peak_rss_mib(server.process.pid)
        page_file = page_capture(server.url, tokens[0], store.data_dir / "bare-page.json")
    same_pages, pages_checked = raw_pages_checked(store, readers)
    connections.close_all()
    raw_rps, raw_cpu = measure_raw(store, readers, processes=workers, seconds=min(10, args.seconds))
    cpu_ratio = raw_cpu["all"] / api_cpu_ms if api_cpu_ms else 0.0
    stored_rps, stored_cpu = measure_raw(
        store, readers, processes=workers, seconds=min(10, args.seconds), merged=False
    )
    bare = measure_bare(
        store,
        page_file,
        token_file,
        server_kind=args.server,
        workers=workers,
        threads=args.threads,
        clients=args.clients,
        seconds=min(10, args.seconds),
    )
    ceiling = raw_cpu["all"] / (raw_cpu["all"] + bare["cpu_ms"]["all"])
    posting = None
    raw_writes = 0.0
    if args.post_seconds:
        connections.close_all()
        raw_writes = measure_raw_writes(
            store, processes=workers, clients=args.post_clients, seconds=min(10, args.post_seconds)
        )
        posting = measure_posting(
            store,
            token_file,
            server_kind=args.server,
            workers=workers,
            threads=args.threads,
            clients=args.post_clients,
            seconds=args.post_seconds,
        )
    fanout = measure_fanout(world.celebrity_id)

    ratio = load.rps / raw_rps if raw_rps else 0.0
    rss_each = max(read_rss[0], posting["peak_rss_mib"][0] if posting else 0.0)
    figures = {
        "store": args.store,
        "scale": args.scale,
        "workers": workers,
        "server": args.server,
        "threads": args.threads if args.server == "granian" else None,
        "clients": args.clients,
        "world": {
            "users": len(world.user_ids),
            "follows": world.follows,
            "posts": world.posts,
            "load_s": world.seconds,
        },
        "api": load.__dict__,
        "cpu_per_read_ms": cpu_per_read,
        "raw_reads_per_s": raw_rps,
        "raw_cpu_per_read_ms": raw_cpu,
        "ratio_to_raw_by_cpu": cpu_ratio,
        "raw_pages_equal_to_api": [same_pages, pages_checked],
        "stored_only_reads_per_s": stored_rps,
        "stored_only_cpu_per_read_ms": stored_cpu,
        "bare_http": bare,
        "ratio_ceiling_by_cpu": ceiling,
        "raw_post_rows_per_s": raw_writes,
        "ratio_to_raw": ratio,
        "read_peak_rss_mib": read_rss,
        "posting": posting,
        "fanout": fanout,
        "machine": machine,
    }
    lines = [
        f"- Machine: {machine}. Store: {args.store}"
        + (" + Redis" if args.store == "postgres" else "")
        + f"; {args.server} ({_server_shape(args.server, workers, args.threads)});"
        f" {args.clients} clients for {args.seconds} s; {len(readers)} readers' tokens.",
        f"- World: {len(world.user_ids):,} users, {world.follows:,} follows (power law), {world.posts:,} posts.",
        f"- Home timeline API (`limit=20`): **{load.rps:,.0f} req/s**, p50 {load.p50_ms:.1f} ms, "
        f"p99 {load.p99_ms:.1f} ms; errors {load.errors}, non-2xx {load.non_2xx}.",
        f"- CPU per home read under that load, ms: {cpu_per_read}.",
        f"- Raw store read (the stored timeline and the followed big authors' newest posts merged, then the"
        f" page's posts by id; {workers} process(es)): {raw_rps:,.0f} reads/s; **API / raw = {ratio:.0%}**."
        f" The raw page equals the endpoint's for {same_pages} of {pages_checked} readers.",
        "- CPU per raw read, ms: "
        + "; ".join(f"{name} {spent:.2f}" for name, spent in raw_cpu.items())
        + f"; raw read's CPU / API read's CPU = {cpu_ratio:.0%} (the throughput ratio when the two cores are"
        " the limit, steadier than the rates when other work shares the box).",
        f"- The stored timeline alone (no big authors: not the page of a reader who follows any) + posts by"
        f" id: {stored_rps:,.0f} reads/s, CPU {stored_cpu['all']:.2f} ms a read; API / that ="
        f" {load.rps / stored_rps if stored_rps else 0:.0%} ({stored_cpu['all'] / api_cpu_ms if api_cpu_ms else 0:.0%}"
        " by CPU).",
        f"- Bare HTTP (the same page answered by a fixed-answer app on the same server, same clients):"
        f" {bare['rps']:,.0f} req/s; CPU per request, ms: "
        + "; ".join(f"{name} {spent:.2f}" for name, spent in bare["cpu_ms"].items())
        + f". A home read costing only the raw read plus that bare answer would be **{ceiling:.0%} of the"
        " raw read by CPU**: the highest ratio any implementation of the endpoint reaches over HTTP here.",
    ]
    if posting is not None:
        post_load = posting["load"]
        lines.append(
            f"- Posting (`POST /api/v1/statuses`, {args.post_clients} clients for {args.post_seconds} s, fan-out"
            f" by a separate task worker): **{posting['posts_per_s']:,.0f} posts/s**, p50 {post_load['p50_ms']:.1f} ms,"
            f" p99 {post_load['p99_ms']:.1f} ms; errors {post_load['errors']}, non-2xx {post_load['non_2xx']};"
            f" fan-out finished for {posting['fanout_finished']:,} of {posting['posts_made']:,} posts"
            f" {posting['fanout_drained_after_s']:.1f} s after the load ({posting['fanout_entries']:,} entries)"
            + (f"; unfinished: {posting['fanout_unfinished']}." if posting["fanout_unfinished"] else ".")
        )
        if posting["cpu_all_per_post_ms"]:
            cores = os.cpu_count() or 1
            lines.append(
                f"- CPU per post (its request, its fan-out by the worker, the database, Redis, the load"
                f" generator), ms: {posting['cpu_per_post_ms']}: the {cores} cores give at most"
                f" **{cores * 1000 / posting['cpu_all_per_post_ms']:,.0f} posts/s** at that cost."
            )
        lines.append(
            f"- Raw post write (one INSERT of a post row per commit, {args.post_clients} threads over {workers}"
            f" process(es)): {raw_writes:,.0f} rows/s; **posting / raw = {posting['posts_per_s'] / raw_writes:.0%}**."
            if raw_writes
            else "- Raw post write: not measured."
        )
    lines += [
        f"- Fan-out of one post by an account with {fanout['followers']:,} followers: {fanout['entries']:,} entries in "
        f"{fanout['seconds']:.2f} s = **{fanout['entries_per_s']:,.0f} entries/s**.",
        f"- Server peak RSS (VmHWM): reads {read_rss[0]:,.0f} MiB per process ({read_rss[1]:,.0f} MiB all"
        " processes)"
        + (
            f"; posting {posting['peak_rss_mib'][0]:,.0f} MiB per process ({posting['peak_rss_mib'][1]:,.0f} MiB all)"
            if posting
            else ""
        )
        + ".",
    ]
    lines.append(
        "- Targets (DESIGN.md): "
        + "; ".join(_targets(args.store, load.rps, load.p99_ms, ratio, fanout, posting, rss_each))
        + "."
    )
    # The default server's runs share a section per store and scale; another server gets its own.
    server_note = "" if args.server == "granian" else f", {args.server}"
    record(f"timeline ({args.store}, {args.scale}{server_note})", command, lines, figures)
    print("\n".join(lines))
    if args.keep or args.reuse:
        print(
            f"the world is kept in {store.data_dir}"
            + (f" and {store.env['DATABASE_URL']}" if args.store == "postgres" else "")
        )
    else:
        discard_store(store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
