"""Where the time of one `POST /api/v1/statuses` goes: the statements of a post and a cProfile of many.

    python bench/timeline/profile_post.py --data-dir /tmp/wt-profile-post            # builds a tiny world once
    python bench/timeline/profile_post.py --data-dir /tmp/wt-profile-post --posts 500 --top 30

The world is kept in `--data-dir` (SQLite) so repeated profiles skip the build; with `--postgres URL`
and `--redis URL` it is kept in that database instead. Requests go through the WSGI application (so
any fast path in front of Django is measured too), in this process, on one thread.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--postgres", help="DATABASE_URL of a database to keep the world in")
    parser.add_argument("--redis", help="REDIS_URL for the timelines")
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--no-profile", action="store_true", help="only count statements and time posts")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="profile CPU time (time.process_time) rather than wall time, so waits on the database and"
        " Redis drop out and what is left is this process's own work",
    )
    args = parser.parse_args()

    from bench.common import profile_requests, setup_django_for_profile, wsgi_post_json

    setup_django_for_profile(
        args.data_dir,
        postgres=args.postgres,
        redis=args.redis,
        extra={"WEITUAN_RATE_LIMIT_WRITES": "100000000"},
    )

    from bench.timeline.run import SCALES, pick_readers
    from weituan.accounts.models import User
    from weituan.accounts.tokens import access_token_issue
    from weituan.simulate.world import WorldSpec, world_build
    from weituan.wsgi import application

    if not User.objects.exists():
        world_build(WorldSpec(**SCALES["tiny"]), progress=True)
    readers = pick_readers(50, seed=7)
    tokens = [access_token_issue(user=User(pk=uid))[0] for uid in readers]
    counter = [0]

    def post(i: int) -> None:
        counter[0] += 1
        body = f'{{"status": "拼团进行中 {os.getpid()}-{counter[0]} #双十一#"}}'.encode()
        status, content = wsgi_post_json(application, "/api/v1/statuses", body, tokens[i % len(tokens)])
        assert status.startswith("200"), (status, content[:300])

    for i in range(len(tokens)):  # warm: caches filled, topics made
        post(i)
    profile_requests(
        post,
        count=args.posts,
        noun="post",
        sort=args.sort,
        top=args.top,
        no_profile=args.no_profile,
        cpu_clock=args.cpu,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
