import pytest
from django.contrib.auth import authenticate
from django.db.models import F

from weituan.accounts.models import User
from weituan.core.errors import ServiceError
from weituan.deals.models import Deal, Order, Team
from weituan.deals.queries import ledger_report
from weituan.microblog.models import Bookmark, Follow, Post
from weituan.microblog.search.trending import trending_topics
from weituan.microblog.timelines.home import home_timeline_ids
from weituan.simulate.demo import DEMO_PASSWORD, demo_world_build, demo_world_build_if_empty


@pytest.mark.django_db
def test_the_demo_world_is_a_live_town_a_newcomer_can_log_in_to():
    summary = demo_world_build(seed=2012)

    assert summary.users == User.objects.count() == 29
    assert summary.follows == Follow.objects.count()
    assert summary.posts == Post.objects.filter(kind="original").count()
    assert summary.reposts == Post.objects.filter(kind="repost").count() > 0
    assert summary.comments == Post.objects.filter(kind="comment").count() > 0
    assert Post.objects.filter(kind="repost", depth__gte=2).exists()  # reposts of reposts
    # Shoppers keep a few posts (收藏), none of their own.
    assert Bookmark.objects.exists()
    assert not Bookmark.objects.filter(user_id=F("post__author_id")).exists()
    assert User.objects.filter(is_merchant=True, verified_at__isnull=False).count() == 4

    # Each merchant has a deal on its card post: one tipped, one with a team waiting for its last
    # member, one short of its tipping point, one on the calendar; every order is held in the ledger.
    states = dict(Deal.objects.values_list("merchant__username", "state"))
    assert states == {
        "xiaolongbao": "tipped",
        "hotpot_chen": "live",
        "milk_tea_lab": "live",
        "fitclub": "scheduled",
    }
    assert summary.deals == Deal.objects.filter(post_id__isnull=False).count() == 4
    assert summary.orders == Order.objects.count() == 20
    assert Team.objects.get().members == 2
    assert ledger_report().ok

    # A newcomer's trending list is not empty: people who do not follow one another are all posting
    # about today's snow.
    trends = [trend.name for trend in trending_topics()]
    assert trends[0] == "初雪", trends

    posts_before = Post.objects.count()
    alice = authenticate(username="alice", password=DEMO_PASSWORD)
    assert alice is not None
    assert len(home_timeline_ids(alice.pk, limit=20)) == 20

    assert demo_world_build_if_empty() is None  # a second start leaves the world alone
    assert User.objects.count() == 29
    with pytest.raises(ServiceError) as refused:  # and so does building it again
        demo_world_build(seed=7)
    assert refused.value.code == "demo_not_empty"
    assert User.objects.count() == 29
    assert Post.objects.count() == posts_before


@pytest.mark.django_db
def test_outside_dev_and_demo_mode_the_demo_deals_are_published_and_nobody_buys(settings):
    settings.PROFILE = "production"
    summary = demo_world_build(seed=7)
    assert summary.deals == Deal.objects.count() == 4
    assert summary.orders == Order.objects.count() == 0
    assert ledger_report().ok
