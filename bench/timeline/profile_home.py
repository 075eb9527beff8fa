"""Where the time of one home-timeline request goes: queries per request and a cProfile of many requests.

    python bench/timeline/profile_home.py --data-dir /tmp/wt-profile            # builds a tiny world once
    python bench/timeline/profile_home.py --data-dir /tmp/wt-profile --requests 500 --top 30

The world is kept in `--data-dir` (SQLite) so repeated profiles skip the build; with `--postgres URL`
and `--redis URL` it is kept in that database instead.
"""

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--postgres", help="DATABASE_URL of a database to keep the world in")
    parser.add_argument("--redis", help="REDIS_URL for the timelines")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative")
    args = parser.parse_args()

    from bench.common import setup_django_for_profile

    setup_django_for_profile(args.data_dir, postgres=args.postgres, redis=args.redis)

    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.timeline.run import SCALES, pick_readers
    from weituan.accounts.models import User
    from weituan.accounts.tokens import access_token_issue
    from weituan.simulate.world import WorldSpec, world_build

    if not User.objects.exists():
        world_build(WorldSpec(**SCALES["tiny"]), progress=True)
    readers = pick_readers(50, seed=7)
    tokens = [access_token_issue(user=User(pk=uid))[0] for uid in readers]
    client = Client()

    def get(i: int) -> None:
        response = client.get(
            "/api/v1/timelines/home?limit=20", HTTP_AUTHORIZATION=f"Bearer {tokens[i % len(tokens)]}"
        )
        assert response.status_code == 200, response.content[:300]

    for i in range(len(tokens)):  # warm: timelines built, caches filled
        get(i)
    with CaptureQueriesContext(connection) as captured:
        get(0)
    print(f"queries per home read: {len(captured.captured_queries)}")
    for query in captured.captured_queries:
        print(f"  {query['time']}s  {query['sql'][:160]}")
    reset_queries()

    started = time.perf_counter()
    for i in range(args.requests):
        get(i)
    plain = time.perf_counter() - started
    print(f"{args.requests} requests in {plain:.2f} s = {args.requests / plain:,.0f} req/s (test client)")
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(args.requests):
        get(i)
    profiler.disable()
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
