from collections import Counter

import pytest

from weituan.core.ids import time_of
from weituan.microblog.models import AccountStats, Follow, Post
from weituan.simulate.world import WorldSpec, world_build


@pytest.mark.django_db
def test_a_small_world_has_exact_counts_and_a_celebrity():
    world = world_build(WorldSpec(users=300, follows=3_000, posts=900, seed=7))

    assert len(world.user_ids) == 300
    assert world.follows == Follow.objects.count() == 3_000
    assert world.posts == Post.objects.count() == 900
    assert Follow.objects.filter(followee_id=world.celebrity_id).count() == 299
    assert not Follow.objects.filter(follower_id=world.celebrity_id, followee_id=world.celebrity_id).exists()

    stats = {row.user_id: row for row in AccountStats.objects.all()}
    followers = Counter(Follow.objects.values_list("followee_id", flat=True))
    following = Counter(Follow.objects.values_list("follower_id", flat=True))
    posts = Counter(Post.objects.values_list("author_id", flat=True))
    for user_id in world.user_ids:
        assert stats[user_id].followers_count == followers[user_id]
        assert stats[user_id].following_count == following[user_id]
        assert stats[user_id].posts_count == posts[user_id]


@pytest.mark.django_db
def test_world_posts_are_time_ordered_by_id_and_follows_are_skewed():
    world = world_build(WorldSpec(users=400, follows=6_000, posts=300, seed=11))
    rows = list(Post.objects.order_by("id").values_list("id", "created_at"))
    assert [created for _, created in rows] == sorted(created for _, created in rows)
    for post_id, created in rows[:20]:
        assert abs((time_of(post_id) - created).total_seconds()) < 0.002

    followers = Counter(Follow.objects.values_list("followee_id", flat=True))
    counts = sorted(followers.values(), reverse=True)
    # A power law: the top 1% of accounts hold far more than 1% of the follows.
    top = sum(counts[: len(world.user_ids) // 100])
    assert top > 0.1 * world.follows
