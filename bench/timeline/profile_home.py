"""Where the time of one home-timeline request goes: queries per request and a cProfile of many requests.

    python bench/timeline/profile_home.py --data-dir /tmp/wt-profile            # builds a tiny world once
    python bench/timeline/profile_home.py --data-dir /tmp/wt-profile --requests 500 --top 30

Requests go through the WSGI application, so the path in front of Django is what is measured.

The world is kept in `--data-dir` (SQLite) so repeated profiles skip the build; with `--postgres URL`
and `--redis URL` it is kept in that database instead.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

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
    parser.add_argument("--no-profile", action="store_true", help="only count statements and time reads")
    parser.add_argument(
        "--threshold", type=int, help="WEITUAN_FANOUT_THRESHOLD, so some followed authors are merged at read"
    )
    args = parser.parse_args()

    from bench.common import profile_requests, setup_django_for_profile, wsgi_get

    extra = {"WEITUAN_FANOUT_THRESHOLD": str(args.threshold)} if args.threshold else None
    setup_django_for_profile(args.data_dir, postgres=args.postgres, redis=args.redis, extra=extra)

    from bench.timeline.run import SCALES, pick_readers
    from weituan.accounts.models import User
    from weituan.accounts.tokens import access_token_issue
    from weituan.simulate.world import WorldSpec, world_build
    from weituan.wsgi import application as wsgi_application

    application: Any = wsgi_application  # called with a bare start_response

    if not User.objects.exists():
        world_build(WorldSpec(**SCALES["tiny"]), progress=True)
    readers = pick_readers(50, seed=7)
    tokens = [access_token_issue(user=User(pk=uid))[0] for uid in readers]

    def get(i: int) -> None:
        status, body = wsgi_get(application, "/api/v1/timelines/home", "limit=20", tokens[i % len(tokens)])
        assert status.startswith("200"), (status, body[:300])

    for i in range(len(tokens)):  # warm: timelines built, caches filled
        get(i)
    profile_requests(
        get, count=args.requests, noun="home read", sort=args.sort, top=args.top, no_profile=args.no_profile
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
