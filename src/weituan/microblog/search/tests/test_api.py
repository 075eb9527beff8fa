"""The Mastodon search and trends endpoints: paths, parameters and JSON shapes."""

from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from weituan.core.redis import rkey
from weituan.microblog.models import Block, Post, PostTopic, Topic
from weituan.microblog.search.tests.test_trending import accounts
from weituan.microblog.services.posts import post_create, post_delete

pytestmark = pytest.mark.django_db

TAG_KEYS = {"id", "name", "url", "history"}
ACCOUNT_KEYS = {
    "id",
    "username",
    "acct",
    "display_name",
    "url",
    "avatar",
    "followers_count",
    "statuses_count",
}


def topic_used(name: str, display: str, authors: list[Any]) -> Topic:
    topic = Topic.objects.create(name=name, display=display, posts_count=len(authors))
    at = timezone.now()  # today in UTC, whatever the hour
    posts = Post.objects.bulk_create(Post(author=author, text=f"#{display}#") for author in authors)
    PostTopic.objects.bulk_create(
        PostTopic(post=post, topic=topic, author=author, created_at=at)
        for post, author in zip(posts, authors, strict=True)
    )
    return topic


def test_v2_search_returns_the_search_entity(api_as: Any, shopper: Any, merchant: Any) -> None:
    Topic.objects.create(name="团购节", display="团购节", posts_count=4)

    response = api_as(shopper).get("/api/v2/search", {"q": "团购"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accounts", "statuses", "hashtags"}
    assert body["accounts"] == []
    (tag,) = body["hashtags"]
    assert set(tag) == TAG_KEYS | {"following"}
    assert tag["name"] == "团购节"
    assert tag["url"] == "http://testserver/topics/%E5%9B%A2%E8%B4%AD%E8%8A%82"
    assert tag["following"] is False
    assert len(tag["history"]) == 7
    assert tag["history"][0] == {
        "day": str(int(timezone.now().replace(hour=0, minute=0, second=0, microsecond=0).timestamp())),
        "uses": "0",
        "accounts": "0",
    }


def test_v2_search_accounts_by_type(api_as: Any, shopper: Any, merchant: Any) -> None:
    body = api_as(shopper).get("/api/v2/search", {"q": "小店", "type": "accounts"}).json()
    assert [account["acct"] for account in body["accounts"]] == ["meituan_shop"]
    assert set(body["accounts"][0]) >= ACCOUNT_KEYS
    assert body["statuses"] == [] and body["hashtags"] == []


def test_v2_search_hides_blocked_accounts(api_as: Any, shopper: Any, merchant: Any) -> None:
    Block.objects.create(blocker=shopper, blocked=merchant)
    body = api_as(shopper).get("/api/v2/search", {"q": "meituan", "type": "accounts"}).json()
    assert body["accounts"] == []


def test_anonymous_search_and_paging(db: Any) -> None:
    for name in ("deal_a", "deal_b", "deal_c"):
        Topic.objects.create(name=name, display=name)
    client = Client()
    body = client.get(
        "/api/v2/search", {"q": "#deal", "type": "hashtags", "limit": "1", "offset": "1"}
    ).json()
    assert [tag["name"] for tag in body["hashtags"]] == ["deal_b"]
    assert "following" not in body["hashtags"][0]


def test_empty_query_finds_nothing(db: Any) -> None:
    body = Client().get("/api/v2/search", {"q": "  "}).json()
    assert body == {"accounts": [], "statuses": [], "hashtags": []}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": "x", "type": "people"}, "invalid"),
        ({"q": "x", "limit": 0}, "invalid"),
        ({"q": "x", "max_id": "abc"}, "invalid_cursor"),
        ({"q": "x" * 201}, "query_too_long"),
        ({"q": "x", "following": "true"}, "login_required"),
    ],
)
def test_bad_search_parameters_are_refused(db: Any, params: dict[str, Any], code: str) -> None:
    response = Client().get("/api/v2/search", params)
    assert 400 <= response.status_code < 500
    assert response.json()["code"] == code


def test_v1_search_lists_hashtags_by_name(db: Any) -> None:
    Topic.objects.create(name="deals", display="Deals")
    body = Client().get("/api/v1/search", {"q": "deal"}).json()
    assert body["hashtags"] == ["Deals"]


def test_trends_tags_shape_and_alias(api_as: Any, shopper: Any) -> None:
    cache.delete(rkey("trends", "topics"))
    topic_used("周末团", "周末团", accounts("weekend", 6))

    response = api_as(shopper).get("/api/v1/trends/tags")
    assert response.status_code == 200
    (tag,) = response.json()
    assert set(tag) == TAG_KEYS | {"following"}
    assert tag["name"] == "周末团"
    assert tag["history"][0]["uses"] == "6"
    assert tag["history"][0]["accounts"] == "6"
    assert [entry["uses"] for entry in tag["history"][1:]] == ["0"] * 6

    alias = Client().get("/api/v1/trends", {"limit": 5}).json()
    assert [t["name"] for t in alias] == ["周末团"]
    assert "following" not in alias[0]
    assert Client().get("/api/v1/trends/tags", {"offset": 1}).json() == []
    assert Client().get("/api/v1/trends/tags", {"limit": 0}).status_code == 422


def test_v2_search_statuses(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        deal = post_create(author=merchant, text="今天的团购很划算 Great DEAL")
        other = post_create(author=outsider, text="划算吗？")
        gone = post_create(author=merchant, text="划算 but deleted")
        post_delete(actor=merchant, post_id=gone.id)
    Block.objects.create(blocker=shopper, blocked=outsider)
    client = api_as(shopper)

    body = client.get("/api/v2/search", {"q": "划算", "type": "statuses"}).json()
    (status,) = body["statuses"]
    assert status["id"] == str(deal.id)
    assert status["account"]["acct"] == "meituan_shop"
    assert {"content", "created_at", "url", "reblogs_count", "favourites_count"} <= set(status)
    assert body["accounts"] == [] and body["hashtags"] == []

    latin = client.get("/api/v2/search", {"q": "great deal", "type": "statuses"}).json()
    assert [s["id"] for s in latin["statuses"]] == [str(deal.id)]
    anonymous = Client().get("/api/v2/search", {"q": "划算", "type": "statuses"}).json()
    assert [s["id"] for s in anonymous["statuses"]] == [str(other.id), str(deal.id)]
    only_merchant = Client().get("/api/v2/search", {"q": "划算", "account_id": str(merchant.pk)}).json()
    assert [s["id"] for s in only_merchant["statuses"]] == [str(deal.id)]


def test_trends_statuses_and_links(api_as: Any, shopper: Any, merchant: Any, outsider: Any) -> None:
    cache.delete(rkey("trends", "statuses"))
    liked = Post.objects.create(author=merchant, text="团购 hot", likes_count=5)
    other = Post.objects.create(author=outsider, text="also hot", likes_count=2)
    Block.objects.create(blocker=shopper, blocked=outsider)

    body = api_as(shopper).get("/api/v1/trends/statuses").json()
    assert [status["id"] for status in body] == [str(liked.id)]
    anonymous = Client().get("/api/v1/trends/statuses").json()
    assert [status["id"] for status in anonymous] == [str(liked.id), str(other.id)]
    assert Client().get("/api/v1/trends/links").json() == []
