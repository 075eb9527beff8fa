"""Trending topics: velocity against the usual level, decay, and resistance to rings of accounts."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from weituan.core.ids import id_at
from weituan.core.redis import rkey
from weituan.microblog.models import Follow, Mention, Post, PostTopic, Topic
from weituan.microblog.search.trending import trending_compute, trending_post_ids_compute, trending_topics

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def accounts(prefix: str, count: int, joined: datetime = LONG_AGO) -> list[Any]:
    user_model = get_user_model()
    user_model.objects.bulk_create(
        user_model(username=f"{prefix}{i}", password="!", date_joined=joined) for i in range(count)
    )
    return list(user_model.objects.filter(username__startswith=prefix).order_by("username"))


def topic(name: str) -> Topic:
    return Topic.objects.create(name=name, display=name)


def use(topic: Topic, uses: list[tuple[Any, datetime]]) -> None:
    posts = Post.objects.bulk_create(Post(author=author, text=f"#{topic.name}#") for author, _ in uses)
    PostTopic.objects.bulk_create(
        PostTopic(post=post, topic=topic, author=author, created_at=at)
        for post, (author, at) in zip(posts, uses, strict=True)
    )


def names(trends: list[Any]) -> list[str]:
    return [trend.name for trend in trends]


def test_a_topic_rising_among_many_independent_authors_beats_a_steady_busy_one() -> None:
    steady, rising = topic("daily_deals"), topic("新品首发")
    regulars = accounts("regular", 30)
    # The same 30 people every day for eight days, through each morning.
    use(
        steady,
        [(a, NOW - timedelta(days=d, hours=1 + i % 12)) for d in range(8) for i, a in enumerate(regulars)],
    )
    newcomers = accounts("fan", 12)
    use(rising, [(a, NOW - timedelta(minutes=20 * i)) for i, a in enumerate(newcomers)])

    trends = trending_compute(now=NOW)

    assert names(trends) == ["新品首发", "daily_deals"]
    by_name = {t.name: t for t in trends}
    assert by_name["daily_deals"].usual_per_day == 30.0
    assert by_name["daily_deals"].authors == 30
    assert by_name["新品首发"].usual_per_day == 0.0
    assert by_name["新品首发"].score > 5 * by_name["daily_deals"].score


@pytest.mark.parametrize("kind", ["follow_ring", "new_accounts"])
def test_a_ring_of_five_accounts_posting_200_times_does_not_trend(kind: str) -> None:
    organic, spam = topic("周末去哪儿"), topic("buy_our_stuff")
    use(organic, [(a, NOW - timedelta(hours=i)) for i, a in enumerate(accounts("person", 6))])
    joined = NOW - timedelta(hours=30) if kind == "new_accounts" else LONG_AGO
    ring = accounts("ring", 5, joined=joined)
    if kind == "follow_ring":
        Follow.objects.bulk_create(Follow(follower=a, followee=ring[(i + 1) % 5]) for i, a in enumerate(ring))
    use(spam, [(ring[i % 5], NOW - timedelta(minutes=i)) for i in range(200)])

    assert names(trending_compute(now=NOW)) == ["周末去哪儿"]


def test_a_clique_counts_as_one_author() -> None:
    clique_topic = topic("clique")
    members = accounts("member", 8)
    Follow.objects.bulk_create(Follow(follower=a, followee=b) for a in members for b in members if a != b)
    use(clique_topic, [(a, NOW - timedelta(hours=1)) for a in members])
    assert trending_compute(now=NOW) == []


def test_decay_lowers_yesterdays_spike() -> None:
    spike, fresh = topic("flash_sale"), topic("午餐团")
    spike_at = NOW - timedelta(hours=20)
    use(spike, [(a, spike_at) for a in accounts("crowd", 20)])
    use(fresh, [(a, NOW - timedelta(minutes=30)) for a in accounts("lunch", 6)])

    at_spike = {t.name: t.score for t in trending_compute(now=spike_at + timedelta(hours=1))}
    later = {t.name: t.score for t in trending_compute(now=NOW)}

    assert list(at_spike) == ["flash_sale"]  # the lunch topic did not exist yet
    assert later["flash_sale"] < at_spike["flash_sale"] / 10
    assert list(later) == ["午餐团", "flash_sale"]
    # Once the spike leaves the window it is gone.
    assert names(trending_compute(now=spike_at + timedelta(hours=25))) == ["午餐团"]


def test_deleted_posts_do_not_count() -> None:
    deleted = topic("deleted")
    use(deleted, [(a, NOW - timedelta(hours=1)) for a in accounts("gone", 6)])
    assert names(trending_compute(now=NOW)) == ["deleted"]
    Post.objects.update(deleted_at=NOW)
    assert trending_compute(now=NOW) == []


def test_history_counts_uses_and_accounts_per_day_today_first() -> None:
    busy = topic("history")
    people = accounts("hist", 6)
    use(busy, [(a, NOW - timedelta(hours=1)) for a in people] + [(people[0], NOW - timedelta(hours=2))])
    use(busy, [(people[0], NOW - timedelta(days=2)), (people[1], NOW - timedelta(days=2))])

    (trend,) = trending_compute(now=NOW)

    assert [(h.day, h.uses, h.accounts) for h in trend.history[:4]] == [
        (datetime(2026, 11, 20, tzinfo=UTC), 7, 6),
        (datetime(2026, 11, 19, tzinfo=UTC), 0, 0),
        (datetime(2026, 11, 18, tzinfo=UTC), 2, 2),
        (datetime(2026, 11, 17, tzinfo=UTC), 0, 0),
    ]
    assert len(trend.history) == 7
    assert trend.authors == 6


def test_the_ranking_is_cached_for_a_few_minutes() -> None:
    cache.delete(rkey("trends", "topics"))
    popular = topic("popular")
    assert trending_topics() == []
    use(popular, [(a, datetime.now(UTC)) for a in accounts("late", 6)])
    assert trending_topics() == []  # still the cached ranking
    cache.delete(rkey("trends", "topics"))
    assert names(trending_topics()) == ["popular"]


def test_authors_who_mention_each_other_are_not_independent() -> None:
    ring_topic = topic("mention_ring")
    ring = accounts("mentioner", 6)
    use(ring_topic, [(a, NOW - timedelta(hours=1)) for a in ring])
    posts = Post.objects.filter(post_topics__topic=ring_topic).order_by("author__username")
    Mention.objects.bulk_create(Mention(post=post, user=ring[(i + 1) % 6]) for i, post in enumerate(posts))
    # Each account is linked to two others: six accounts weigh two in all, below the five needed.
    assert trending_compute(now=NOW) == []


def test_trending_posts_weigh_engagement_against_age_one_per_author() -> None:
    alice, bob, carol = accounts("poster", 3)
    now = datetime.now(UTC)

    def post(author: Any, hours_ago: float, likes: int, reposts: int = 0) -> Post:
        return Post.objects.create(
            id=id_at(now - timedelta(hours=hours_ago)) + author.pk,
            author=author,
            text="x",
            likes_count=likes,
            reposts_count=reposts,
        )

    fresh = post(alice, 1, likes=3)  # 3 / 3^1.5 = 0.58
    older_bigger = post(bob, 20, likes=20, reposts=10)  # 40 / 22^1.5 = 0.39
    alice_second = post(alice, 2, likes=2)  # alice's weaker post is left out
    post(carol, 60, likes=500)  # outside the window
    post(carol, 1, likes=0)  # no engagement
    Post.objects.create(author=carol, text="gone", likes_count=9, deleted_at=now)

    assert trending_post_ids_compute(now=now) == [fresh.id, older_bigger.id]
    assert alice_second.id not in trending_post_ids_compute(now=now)
