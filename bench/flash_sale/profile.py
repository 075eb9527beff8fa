"""Where the time of one checkout (`POST /api/v1/deals/{id}/orders`) goes: its statements and a cProfile.

    python -m bench.flash_sale.profile --data-dir /tmp/wt-profile-flash                # SQLite
    python -m bench.flash_sale.profile --data-dir /tmp/wt-profile-flash-pg \\
        --postgres postgres://postgres@127.0.0.1:5432/NAME --redis redis://127.0.0.1:6379/N --orders 500

Requests go through the WSGI application (so the path in front of Django is measured too), in this
process, on one thread, each buyer buying one unit of a large live deal at a time. A fresh deal is made
on each run; the buyers and their tokens are kept in the store and reused.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BUYERS = 50


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--postgres", help="DATABASE_URL of a database to keep the buyers in")
    parser.add_argument("--redis", help="REDIS_URL for the stock gate")
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--no-profile", action="store_true", help="only count statements and time orders")
    args = parser.parse_args()

    from bench.common import setup_django_for_profile

    setup_django_for_profile(
        args.data_dir,
        postgres=args.postgres,
        redis=args.redis,
        extra={"WEITUAN_RATE_LIMIT_WRITES": "100000000"},
    )

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from weituan.accounts.models import User
    from weituan.accounts.tokens import access_token_issue
    from weituan.core.testing import make_user
    from weituan.deals.services.deals import DealInput, deal_create, deal_publish
    from weituan.deals.services.wallet import wallet_top_up
    from weituan.wsgi import application as wsgi_application

    application: Any = wsgi_application  # called with a bare start_response

    merchant = User.objects.filter(username="profile_shop").first() or make_user(
        "profile_shop", merchant=True
    )
    units = args.orders * 3 + BUYERS * 2
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title="秒杀 profile",
            list_price=200,
            deal_price=100,
            max_quantity=units,
            tipping_point=units,
            per_user_limit=units,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=2),
        ),
    )
    deal_id = deal_publish(deal_id=deal.id, by=merchant).id
    tokens = []
    for index in range(BUYERS):
        buyer = User.objects.filter(username=f"profile{index}").first() or make_user(f"profile{index}")
        wallet_top_up(user=buyer, amount=units * 100)
        tokens.append(access_token_issue(user=buyer)[0])
    body = b'{"quantity": 1, "unit_price": 100}'
    path = f"/api/v1/deals/{deal_id}/orders"
    counter = [0]

    def order(i: int) -> None:
        counter[0] += 1
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1:8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {tokens[i % len(tokens)]}",
            "HTTP_IDEMPOTENCY_KEY": f"p{os.getpid()}-{deal_id}-{counter[0]}",
        }
        seen: list[str] = []
        chunks = application(environ, lambda status, headers, *_: seen.append(status))
        content = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        assert seen and seen[0].startswith("201"), (seen, content[:300])

    for i in range(len(tokens)):  # warm: accounts made, scripts loaded, statements compiled
        order(i)
    with CaptureQueriesContext(connection) as captured:
        order(0)
    print(f"statements per checkout: {len(captured.captured_queries)}")
    for query in captured.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:160]}")

    backend_before = _backend_cpu(connection)
    started, before = time.perf_counter(), os.times()
    for i in range(args.orders):
        order(i)
    plain, after = time.perf_counter() - started, os.times()
    backend_after = _backend_cpu(connection)
    user, system = (after.user - before.user) / args.orders, (after.system - before.system) / args.orders
    print(
        f"{args.orders} checkouts in {plain:.2f} s = {args.orders / plain:,.0f}/s (in process, one thread);"
        f" CPU per checkout {user * 1000:.2f} ms user + {system * 1000:.2f} ms system,"
        f" wall {plain / args.orders * 1000:.2f} ms"
    )
    if backend_before is not None and backend_after is not None:
        spent = (backend_after - backend_before) / args.orders
        print(f"PostgreSQL backend CPU per checkout: {spent * 1000:.2f} ms (user + system, from /proc)")
    if args.no_profile:
        return 0
    profiler = cProfile.Profile(time.process_time)  # CPU time: waits on the database count nothing
    profiler.enable()
    for i in range(args.orders):
        order(i)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    return 0


def _backend_cpu(connection: Any) -> float | None:
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


if __name__ == "__main__":
    raise SystemExit(main())
