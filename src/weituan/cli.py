"""The `weituan` command: serve, demo, worker, and every management command."""

import argparse
import multiprocessing
import os
import sys
from pathlib import Path
from typing import NoReturn

# Management commands that never touch the database: they run without one being reachable.
_COMMANDS_WITHOUT_DATABASE = frozenset(
    {
        "help",
        "version",
        "--version",
        "check",
        "diffsettings",
        "makemessages",
        "compilemessages",
        "sendtestemail",
    }
)


def _prepare(data_dir: str | None) -> None:
    if data_dir:
        os.environ["WEITUAN_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")


def _setup() -> None:
    import django

    django.setup()
    from django.conf import settings

    Path(settings.DATA_DIR).mkdir(parents=True, exist_ok=True)
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)


def _services_check() -> None:
    """What every subcommand here needs, checked before it starts: a wrong DATABASE_URL or REDIS_URL
    is one line now, not a traceback after a pool's timeout or a server failing every request."""
    from weituan.core.preflight import database_check, redis_check

    database_check()
    redis_check()


def _migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def serving_threads() -> int:
    """Threads per granian process when not told. A PostgreSQL statement waits on the network for about
    half a request's time, so four threads keep a process busy. SQLite's run in the process and wait on
    nothing, so a second thread only passes the GIL back and forth, at every statement: in one process
    the home read cost twice the CPU with two threads as with one (bench/RESULTS.md). One thread answers
    one request at a time, so a slow one (an upload, a dashboard's query) holds up the rest; a site
    that serves many such requests is better served with `--threads 2`."""
    from django.conf import settings

    return 4 if settings.IS_POSTGRES else 1


def pool_size_for(threads: int) -> int:
    """The database connections a serving process's pool may open when it serves on `threads`
    threads: the default 20, or room for every thread and a few more."""
    return max(20, threads + 8)


def cmd_serve(args: argparse.Namespace) -> int:
    from django.core.exceptions import ImproperlyConfigured

    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise ImproperlyConfigured("--workers and --threads must be at least 1")
    from weituan.core.preflight import listen_address_check

    listen_address_check(args.host, args.port)
    _prepare(args.data_dir)
    # Links made outside a request (short links, e-mails, deal cards) point where this server answers,
    # unless the site's public address is configured.
    if not os.environ.get("WEITUAN_SITE_URL"):
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104 - a comparison
        host = f"[{host}]" if ":" in host else host
        os.environ["WEITUAN_SITE_URL"] = f"http://{host}:{args.port}"
    _setup()
    from django.conf import settings

    if args.workers > 1 and not settings.REDIS_URL:
        # Without Redis, the cache and the one-click-per-hour memory are each serving process's own:
        # several would serve stale pages and count a visitor's repeated clicks once per process. One
        # granian process is one serving process (the task worker, on a thread of the process that
        # starts it, is then a process of its own, as `weituan worker` is). The embedded analytics store
        # is shared by all of them: see tracking/store/chdb_process.py.
        raise ImproperlyConfigured(
            "serving from several processes (--workers above 1) needs REDIS_URL: without it the cache "
            "and click counting are per process; serve with one worker"
        )
    _services_check()
    _migrate()
    if args.demo:
        from weituan.simulate.demo import demo_world_build_if_empty

        demo_world_build_if_empty(progress=True)
    from weituan.tracking.facade import events_flush

    # Events a previous process committed but did not move to the analytics store (or spilled to disk
    # when the store refused them) are moved now, before new traffic arrives.
    events_flush()
    from weituan.tracking.store import analytics_store_close

    # The serving processes connect to the store when they need it; this one's connection is not kept
    # (the store process ends by itself once none is connected).
    analytics_store_close()

    if settings.EMBEDDED_WORKER and not args.no_worker:
        from weituan.core.schedule import start_scheduler
        from weituan.core.worker import start_embedded_worker

        if start_embedded_worker():
            start_scheduler()
    print(
        f"Weituan is serving on http://{args.host}:{args.port}/  (data: {settings.DATA_DIR}; "
        f"{args.server}, {args.workers} process(es))",
        flush=True,
    )
    if args.server == "granian":
        # WSGI on threads: Django's sync stack runs without an event loop or a thread switch per request,
        # the fastest setup for the API on a small machine (see bench/RESULTS.md).
        from granian import Granian
        from granian.constants import Interfaces

        # Server processes start as fresh interpreters: forked from this one (which runs the task
        # worker's thread and holds database connections) they could inherit a lock held mid-use.
        multiprocessing.set_start_method("spawn", force=True)
        threads = args.threads or serving_threads()
        # Each serving thread of the paths in front of Django keeps its connection (`core.front`): a
        # process's pool has room for all of them and Django's own requests, unless configured.
        os.environ.setdefault("WEITUAN_DB_POOL_MAX", str(pool_size_for(threads)))

        Granian(
            "weituan.wsgi:application",
            address=args.host,
            port=args.port,
            interface=Interfaces.WSGI,
            workers=args.workers,
            blocking_threads=threads,
            log_level="warning",  # type: ignore[arg-type]
        ).serve()
        return 0
    import uvicorn

    from weituan.mastodon.streaming_asgi import SHUTDOWN_GRACE_SECONDS, StreamingServer
    from weituan.mastodon.streaming_websocket import websocket_options

    if args.workers > 1:
        # Each process's open streams are cut after the grace period at shutdown (see StreamingServer).
        uvicorn.run(
            "weituan.asgi:application",
            host=args.host,
            port=args.port,
            log_level="warning",
            lifespan="off",
            workers=args.workers,
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            **websocket_options(),
        )
        return 0
    from weituan.asgi import application

    config = uvicorn.Config(
        application,
        host=args.host,
        port=args.port,
        log_level="warning",
        lifespan="off",
        **websocket_options(),
    )
    StreamingServer(config).run()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _prepare(args.data_dir)
    _setup()
    _services_check()
    _migrate()
    from weituan.simulate.demo import demo_world_build

    summary = demo_world_build(seed=args.seed, progress=True)
    print(summary)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    _prepare(args.data_dir)
    _setup()
    _services_check()
    from weituan.core.worker import batch_run, make_worker

    worker = make_worker(interval=args.interval, batch=args.batch)
    # A worker that stays up enqueues the periodic sweeps too (idempotent: several doing so is harmless),
    # so a deployment of servers without workers on their threads still expires vouchers and holds.
    if not args.batch and not args.no_schedule:
        from weituan.core.schedule import start_scheduler

        start_scheduler()
    worker.configure_signals()
    if args.batch:
        batch_run(worker)
    else:
        worker.run()
    return 0


def _bench_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "bench"


def cmd_bench(args: argparse.Namespace) -> int:
    """Run a benchmark from bench/<name>/run.py in a fresh interpreter, passing the remaining arguments."""
    import subprocess

    bench_dir = _bench_dir()
    available = sorted(p.parent.name for p in bench_dir.glob("*/run.py")) if bench_dir.is_dir() else []
    if not args.name:
        print("benchmarks: " + (", ".join(available) or "none found in " + str(bench_dir)))
        return 0
    if args.name not in available:
        print(f"weituan: no benchmark {args.name!r}; choose one of: {', '.join(available)}", file=sys.stderr)
        return 2
    script = bench_dir / args.name / "run.py"
    return subprocess.call([sys.executable, str(script), *args.rest])  # noqa: S603 - our own script


class _Parser(argparse.ArgumentParser):
    """A bad option or value is one line (with where to look), not argparse's usage block and error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1–65535, not {port}")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="weituan",
        description="Weituan (微团) social commerce",
        epilog="Any other command is a Django management command (weituan migrate, weituan createsuperuser, "
        "weituan ledger check, ...): `weituan help` lists them.",
    )
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="migrate if needed and serve the web UI and API")
    serve.add_argument("--data-dir", help="where the SQLite file, media and analytics live (default ./data)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument(
        "--demo", action="store_true", help="build the demo world first if the database is empty"
    )
    serve.add_argument("--no-worker", action="store_true", help="do not run the task worker in this process")
    serve.add_argument(
        "--server",
        choices=["uvicorn", "granian"],
        default="uvicorn",
        help="uvicorn: the ASGI app (default); granian: the WSGI app on threads, fastest for API reads "
        "(no streaming API)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (1 is the embedded default; several need REDIS_URL)",
    )
    serve.add_argument(
        "--threads",
        type=int,
        help="threads per process with --server granian (default: 4 on PostgreSQL, where several overlap "
        "one request's database waits with another's work; 1 on SQLite, whose statements wait on nothing, "
        "so one request at a time: give 2 if slow requests such as uploads must not hold up the rest)",
    )
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser(
        "demo", help="build the demo world of users, follows, posts, reposts and deals on an empty database"
    )
    demo.add_argument("--data-dir")
    demo.add_argument("--seed", type=int, default=2012)
    demo.set_defaults(func=cmd_demo)

    worker = sub.add_parser("worker", help="run background tasks in this process")
    worker.add_argument("--data-dir")
    worker.add_argument("--interval", type=float, default=0.5)
    worker.add_argument(
        "--batch",
        action="store_true",
        help="exit once no task is due (one due within the fan-out's gathering wait is waited for)",
    )
    worker.add_argument(
        "--no-schedule",
        action="store_true",
        help="do not enqueue the periodic sweeps (deal transitions, voucher expiry, outbox, fan-out) here; "
        "some serving or worker process must",
    )
    worker.set_defaults(func=cmd_worker)

    bench = sub.add_parser("bench", help="run a benchmark from bench/ (no name: list them)")
    bench.add_argument("name", nargs="?")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    bench.set_defaults(func=cmd_bench)
    return parser


SUBCOMMANDS = {"serve", "demo", "worker", "bench", "-h", "--help"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from django.core.exceptions import ImproperlyConfigured
    from django.db import OperationalError

    from weituan.core.preflight import database_failure

    if argv and argv[0] not in SUBCOMMANDS:
        # Anything else is a management command: `weituan migrate`, `weituan ledger check`, ...
        _prepare(None)
        try:
            return _management_command(argv)
        except ImproperlyConfigured as exc:
            print(f"weituan: {exc}", file=sys.stderr)
            return 2
        except OperationalError as exc:  # the database went away; any other error keeps its traceback
            print(f"weituan: {database_failure(exc)}", file=sys.stderr)
            return 2
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from weituan.core.errors import ServiceError

    try:
        return int(args.func(args))
    except (ImproperlyConfigured, ServiceError) as exc:
        print(f"weituan: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:  # the database went away; any other error keeps its traceback
        print(f"weituan: {database_failure(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _management_command(argv: list[str]) -> int:
    import django
    from django.core.management import execute_from_command_line, get_commands

    # Loading the settings reads the environment: a bad value is ImproperlyConfigured, one line in main.
    # Django would carry it on and end in a traceback.
    django.setup()
    name = argv[0]
    if name not in get_commands() and name not in ("help", "version", "--version"):
        print(f"weituan: no command {name!r} (weituan --help, weituan help)", file=sys.stderr)
        return 2
    if name not in _COMMANDS_WITHOUT_DATABASE:
        from weituan.core.preflight import database_check

        database_check()
    execute_from_command_line(["weituan", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
