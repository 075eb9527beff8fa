"""Large synthetic worlds for benchmarks: users, a power-law follow graph and a post history.

Follower counts follow a Zipf-like law (a few accounts are followed by many, most by few), as on
Weibo. Account 0 of the world is a celebrity followed by everyone, so a post by a very large account
can be measured. Everything is deterministic for a seed.
"""

import random
import sys
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from weituan.accounts.bulk import NewUser, users_bulk_create
from weituan.core.ids import id_for
from weituan.microblog.bulk import account_stats_rebuild, follows_bulk_load, posts_bulk_load

WORLD_PASSWORD = "weituan-world"
WORDS = [
    "团购",
    "拼团",
    "划算",
    "好吃",
    "火锅",
    "奶茶",
    "健身",
    "周末",
    "deal",
    "today",
    "上海",
    "北京",
    "双十一",
]


@dataclass
class WorldSpec:
    users: int = 10_000
    follows: int = 500_000
    posts: int = 100_000
    zipf: float = 1.05
    seed: int = 2012
    days: int = 30


@dataclass
class World:
    spec: WorldSpec
    user_ids: list[int] = field(default_factory=list)
    follows: int = 0
    posts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def celebrity_id(self) -> int:
        return self.user_ids[0]


def _say(progress: bool, message: str) -> None:
    if progress:
        print(f"  · {message}", file=sys.stderr, flush=True)


def follow_pairs(spec: WorldSpec, rng: random.Random) -> list[tuple[int, int]]:
    """Indexes (follower, followee) into the user list: everyone follows account 0, the rest by Zipf."""
    n = spec.users
    pairs: set[int] = {follower * n for follower in range(1, n)}  # encoded follower * n + followee
    cumulative = list(accumulate(1.0 / (rank + 1) ** spec.zipf for rank in range(n)))
    total = cumulative[-1]
    target = max(spec.follows, len(pairs))
    attempts = 0
    while len(pairs) < target and attempts < target * 4:
        attempts += 1
        follower = rng.randrange(n)
        followee = bisect_left(cumulative, rng.random() * total)
        if followee != follower and followee < n:
            pairs.add(follower * n + followee)
    return [(code // n, code % n) for code in pairs]


def world_build(spec: WorldSpec, *, progress: bool = False) -> World:
    """Load the world into the database (which should be empty) and return its ids and timings."""
    rng = random.Random(spec.seed)
    world = World(spec=spec)

    started = time.perf_counter()
    users = [
        NewUser(username=f"u{i:07d}", display_name=f"用户{i}", is_merchant=i % 97 == 0)
        for i in range(spec.users)
    ]
    world.user_ids = users_bulk_create(users=users, password=WORLD_PASSWORD)
    world.seconds["users"] = time.perf_counter() - started
    _say(progress, f"{spec.users:,} users in {world.seconds['users']:.1f} s")

    started = time.perf_counter()
    pairs = follow_pairs(spec, rng)
    ids = world.user_ids
    now = datetime.now(UTC)
    world.follows = follows_bulk_load(
        pairs=((ids[a], ids[b]) for a, b in pairs), created_at=now - timedelta(days=spec.days)
    )
    world.seconds["follows"] = time.perf_counter() - started
    _say(progress, f"{world.follows:,} follows in {world.seconds['follows']:.1f} s")

    started = time.perf_counter()
    span_ms = spec.days * 86_400_000
    start = now - timedelta(days=spec.days)
    # Prolific authors are the popular ones, as on a real micro-blog: draw authors by the same law.
    cumulative = list(accumulate(1.0 / (rank + 1) ** (spec.zipf * 0.6) for rank in range(spec.users)))
    total = cumulative[-1]

    def posts():
        for sequence in range(spec.posts):
            moment = start + timedelta(milliseconds=sequence * span_ms // max(spec.posts, 1))
            author = ids[min(bisect_left(cumulative, rng.random() * total), spec.users - 1)]
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
            yield id_for(moment, sequence), author, text, moment

    world.posts = posts_bulk_load(posts=posts())
    world.seconds["posts"] = time.perf_counter() - started
    _say(progress, f"{world.posts:,} posts in {world.seconds['posts']:.1f} s")

    started = time.perf_counter()
    account_stats_rebuild()
    world.seconds["counters"] = time.perf_counter() - started
    return world
