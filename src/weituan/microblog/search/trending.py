"""Trending topics (热搜): how fast a topic is rising against its own usual level, with decay.

For each topic the recent level is a count of the distinct accounts that used it in the last day,
each weighted by how long ago (exponential decay with a half-life of hours) and by how independent
the account is. The usual level is the long-run number of distinct accounts per day over the week
before, plus a prior so that a new topic is not divided by zero. The score is the ratio of the two,
weighted by volume, so a topic many unrelated people start talking about today beats one that is
always busy.

The usual level is counted in plain distinct authors and weighed by this window's independence, so a
close-knit community is compared with itself; its links act on the gate and on the volume.

Why a ring of accounts cannot buy a place: each account counts at most once per topic per window
however often it posts; an account's weight is split with every other author of the topic it follows,
is followed by, or mentions (a clique of k counts as one); accounts only days old count a quarter;
and a topic needs a minimum of such independent authors before it is ranked at all.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone

from weituan.core.ids import id_at, time_of
from weituan.core.redis import rkey
from weituan.microblog.models import Follow, Mention, Post, PostKind, PostTopic, Topic, Visibility

CACHE_SECONDS = 300
CACHED_TOP = 50
HISTORY_DAYS = 7
# How many of the most engaged recent posts are weighed for age when ranking trending posts.
STATUS_CANDIDATES = 500


@dataclass(frozen=True)
class TrendRules:
    window_hours: float = 24.0
    half_life_hours: float = 4.0
    baseline_days: int = 7
    # Distinct accounts per day a topic is assumed to have before it has any history.
    baseline_prior_per_day: float = 2.0
    min_independent_authors: float = 5.0
    new_account_age: timedelta = timedelta(days=3)
    new_account_weight: float = 0.25


@dataclass(frozen=True)
class DayUse:
    day: datetime  # midnight UTC
    uses: int
    accounts: int


@dataclass(frozen=True)
class TrendingTopic:
    topic_id: int
    score: float
    recent: float  # decayed, independence-weighted distinct authors in the window
    usual_per_day: float  # distinct authors per day before the window
    authors: int  # distinct authors in the window, unweighted
    name: str = ""  # the topic key
    display: str = ""  # the topic as first written
    history: list[DayUse] = field(default_factory=list)


def _live_uses(since: datetime, until: datetime) -> QuerySet[PostTopic]:
    return PostTopic.objects.filter(
        created_at__gte=since,
        created_at__lte=until,
        post__deleted_at__isnull=True,
        post__visibility=Visibility.PUBLIC,
    )


def _links_between(authors_query: QuerySet[Any], window_uses: QuerySet[PostTopic]) -> dict[int, set[int]]:
    """For each window author, the other window authors they follow, are followed by, or mention (or
    are mentioned by) in the window: who is not independent of whom."""
    links: dict[int, set[int]] = defaultdict(set)
    follows = Follow.objects.filter(follower_id__in=authors_query, followee_id__in=authors_query)
    mentions = Mention.objects.filter(post_id__in=window_uses.values("post_id"), user_id__in=authors_query)
    for a, b in [
        *follows.values_list("follower_id", "followee_id"),
        *mentions.values_list("post__author_id", "user_id"),
    ]:
        if a != b:
            links[a].add(b)
            links[b].add(a)
    return links


def trending_compute(
    *, now: datetime, rules: TrendRules = TrendRules(), limit: int = CACHED_TOP
) -> list[TrendingTopic]:
    """Rank topics at the moment `now`; the cached `trending_topics` is what pages should call."""
    window_start = now - timedelta(hours=rules.window_hours)
    window_uses = _live_uses(window_start, now)

    # One row per (topic, author): an author's last use in the window, however many posts they wrote.
    last_use: dict[int, dict[int, datetime]] = defaultdict(dict)
    for topic_id, author_id, last in (
        window_uses.values("topic_id", "author_id")
        .annotate(last=Max("created_at"))
        .values_list("topic_id", "author_id", "last")
    ):
        last_use[topic_id][author_id] = last
    candidates = {t: uses for t, uses in last_use.items() if len(uses) >= rules.min_independent_authors}
    if not candidates:
        return []

    # Every use in the window, read through the created_at index alone: a superset of the candidates'
    # authors and posts that is cheaper to find than the exact set.
    any_uses = PostTopic.objects.filter(created_at__gte=window_start, created_at__lte=now)
    authors_query = any_uses.values("author_id")
    joined = dict(get_user_model().objects.filter(pk__in=authors_query).values_list("pk", "date_joined"))
    links = _links_between(authors_query, any_uses)

    ln2 = math.log(2)
    # The decayed count a topic used by one distinct account per day, spread evenly, settles at.
    per_daily_author = (
        (rules.half_life_hours / ln2)
        * (1 - math.exp(-ln2 * rules.window_hours / rules.half_life_hours))
        / 24.0
    )
    usual = _usual_per_day(list(candidates), window_start, rules.baseline_days)

    ranked: list[TrendingTopic] = []
    for topic_id, uses in candidates.items():
        authors = sorted(uses)
        author_set = set(authors)
        independent = 0.0
        recent = 0.0
        for author_id in authors:
            used_at = uses[author_id]
            # Split with every linked co-author: a clique of k counts as one author in all.
            linked = links.get(author_id)
            weight = 1.0 / (1 + (len(linked & author_set) if linked else 0))
            date_joined = joined.get(author_id)
            if date_joined is None or used_at - date_joined < rules.new_account_age:
                weight *= rules.new_account_weight
            independent += weight
            age_hours = max((now - used_at).total_seconds() / 3600.0, 0.0)
            recent += weight * math.exp(-ln2 * age_hours / rules.half_life_hours)
        if independent < rules.min_independent_authors:
            continue
        usual_per_day = usual.get(topic_id, 0.0)
        # The usual level is counted in plain distinct authors; weigh it as this window's authors are
        # weighed, so a close-knit community is compared with itself and only the gate and the volume
        # feel its links.
        independence = independent / len(authors)
        expected = (usual_per_day * independence + rules.baseline_prior_per_day) * per_daily_author
        velocity = recent / expected
        score = velocity * math.log1p(recent)
        ranked.append(
            TrendingTopic(
                topic_id=topic_id,
                score=score,
                recent=recent,
                usual_per_day=usual_per_day,
                authors=len(authors),
            )
        )
    ranked.sort(key=lambda trend: (-trend.score, trend.topic_id))
    ranked = ranked[:limit]
    labels = {
        pk: (name, display)
        for pk, name, display in Topic.objects.filter(pk__in=[t.topic_id for t in ranked]).values_list(
            "pk", "name", "display"
        )
    }
    histories = topics_history([t.topic_id for t in ranked], now=now)
    return [
        replace(
            trend,
            name=labels[trend.topic_id][0],
            display=labels[trend.topic_id][1] or labels[trend.topic_id][0],
            history=histories.get(trend.topic_id, []),
        )
        for trend in ranked
        if trend.topic_id in labels
    ]


def _per_day(
    topic_ids: list[int], day_starts: list[datetime], *, uses: bool
) -> dict[int, list[tuple[int, int]]]:
    """(uses, distinct accounts) of each topic in each 24-hour span starting at `day_starts`.

    One pass over the rows with a filtered aggregate per day, rather than grouping by a truncated date:
    SQLite truncates dates in Python, once per row.
    """
    if not topic_ids:
        return {}
    annotations: dict[str, Any] = {}
    for index, start in enumerate(day_starts):
        in_day = Q(created_at__gte=start, created_at__lt=start + timedelta(days=1))
        annotations[f"a{index}"] = Count("author_id", distinct=True, filter=in_day)
        if uses:
            annotations[f"u{index}"] = Count("id", filter=in_day)
    rows = (
        _live_uses(min(day_starts), max(day_starts) + timedelta(days=1) - timedelta(microseconds=1))
        .filter(topic_id__in=topic_ids)
        .values("topic_id")
        .annotate(**annotations)
    )
    counted: dict[int, list[tuple[int, int]]] = {}
    for row in rows:
        values: dict[str, Any] = dict(row)
        counted[int(values["topic_id"])] = [
            (int(values.get(f"u{index}", 0)), int(values[f"a{index}"])) for index in range(len(day_starts))
        ]
    return counted


def _usual_per_day(topic_ids: list[int], window_start: datetime, days: int) -> dict[int, float]:
    """Distinct authors per day, averaged over the `days` 24-hour spans before the window."""
    starts = [window_start - timedelta(days=back) for back in range(1, days + 1)]
    counted = _per_day(topic_ids, starts, uses=False)
    return {topic_id: sum(a for _, a in spans) / days for topic_id, spans in counted.items()}


def topics_history(
    topic_ids: list[int], *, now: datetime, days: int = HISTORY_DAYS
) -> dict[int, list[DayUse]]:
    """Uses and distinct accounts per UTC day for the last `days` days, today first (Mastodon's order)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [today - timedelta(days=back) for back in range(days)]
    counted = _per_day(topic_ids, starts, uses=True)
    empty = [(0, 0)] * days
    return {
        topic_id: [
            DayUse(day=start, uses=uses, accounts=accounts)
            for start, (uses, accounts) in zip(starts, counted.get(topic_id, empty), strict=True)
        ]
        for topic_id in topic_ids
    }


def trending_topics(*, limit: int = 10, offset: int = 0) -> list[TrendingTopic]:
    """The current trending topics, recomputed at most every few minutes (a shared cache entry)."""
    key = rkey("trends", "topics")
    top: list[TrendingTopic] | None = cache.get(key)
    if top is None:
        top = trending_compute(now=timezone.now(), limit=CACHED_TOP)
        cache.set(key, top, CACHE_SECONDS)
    return top[offset : offset + limit]


def trending_post_ids_compute(*, now: datetime, limit: int = CACHED_TOP, window_hours: int = 48) -> list[int]:
    """Recent public originals most reposted, liked and commented on, with gravity for age (the Hacker
    News form: engagement / (hours + 2)^1.5). One post per author, so no account fills the list."""
    rows = (
        Post.objects.filter(
            kind=PostKind.ORIGINAL,
            visibility=Visibility.PUBLIC,
            deleted_at__isnull=True,
            id__gte=id_at(now - timedelta(hours=window_hours)),
        )
        .annotate(engagement=F("reposts_count") * 2 + F("comments_count") + F("likes_count"))
        .filter(engagement__gt=0)
        .order_by("-engagement", "-id")
        .values_list("id", "author_id", "engagement")[:STATUS_CANDIDATES]
    )
    best: dict[int, tuple[float, int]] = {}
    for post_id, author_id, engagement in rows:
        age_hours = max((now - time_of(post_id)).total_seconds() / 3600.0, 0.0)
        score = engagement / (age_hours + 2) ** 1.5
        if author_id not in best or score > best[author_id][0]:
            best[author_id] = (score, post_id)
    ranked = sorted(best.values(), key=lambda pair: (-pair[0], -pair[1]))
    return [post_id for _, post_id in ranked[:limit]]


def trending_post_ids(*, limit: int = 20, offset: int = 0) -> list[int]:
    """The current trending posts, recomputed at most every few minutes (a shared cache entry)."""
    key = rkey("trends", "statuses")
    top: list[int] | None = cache.get(key)
    if top is None:
        top = trending_post_ids_compute(now=timezone.now())
        cache.set(key, top, CACHE_SECONDS)
    return top[offset : offset + limit]
