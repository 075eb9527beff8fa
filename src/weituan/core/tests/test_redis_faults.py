"""A Redis that goes away and comes back: what needs it is answered 503 with a code (never a 500) and
nothing is half-written; what only counts or caches in it goes on from the database; and the same
process serves again once Redis is back."""

from typing import Any

import pytest
from django.test import Client

from weituan.core.models import RateLimitWindow
from weituan.deals.models import Deal, Order, Posting
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_meeting_redis_down_is_a_503_with_a_code_and_takes_nothing(
    own_redis: Any, shopper: Any, merchant: Any, api_as: Any
) -> None:
    deal = live_deal(merchant, max_quantity=5, per_user_limit=1, tipping_point=3)
    wallet_top_up(user=shopper, amount=100_000)
    client = api_as(shopper)
    postings = Posting.objects.count()
    own_redis.stop()

    response = client.post(
        f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, content_type="application/json"
    )

    assert response.status_code == 503
    assert response.json() == {
        "error": "The service is briefly unavailable; try again in a few seconds",
        "code": "unavailable",
    }
    assert response["Retry-After"] == "5"
    assert not Order.objects.filter(deal=deal).exists()
    assert Deal.objects.get(id=deal.id).sold == 0
    assert Posting.objects.count() == postings  # no money moved

    own_redis.start()  # empty, as a Redis without persistence comes back
    again = client.post(f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, content_type="application/json")

    assert again.status_code == 201
    assert Deal.objects.get(id=deal.id).sold == 1


def test_a_post_while_redis_is_down_is_written_and_counted_against_the_limit_in_the_database(
    own_redis: Any, shopper: Any, api_as: Any
) -> None:
    own_redis.stop()

    response = api_as(shopper).post("/api/v1/statuses", {"status": "while the store is away"})

    assert response.status_code == 200
    assert list(Post.objects.filter(author=shopper).values_list("text", flat=True)) == [
        "while the store is away"
    ]
    assert list(
        RateLimitWindow.objects.filter(key=f"writes:{shopper.pk}").values_list("count", flat=True)
    ) == [1]


def test_a_page_meeting_redis_down_says_to_try_again_in_the_readers_language(
    own_redis: Any, shopper: Any, merchant: Any
) -> None:
    deal = live_deal(merchant, max_quantity=5, per_user_limit=1, tipping_point=3)
    wallet_top_up(user=shopper, amount=100_000)
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(shopper)
    own_redis.stop()

    response = client.post(f"/deals/{deal.id}/checkout", {"quantity": "1"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Briefly unavailable" in response.content.decode()
    zh = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(shopper)
    assert "暂时无法使用" in zh.post(f"/deals/{deal.id}/checkout", {"quantity": "1"}).content.decode()
    assert not Order.objects.filter(deal=deal).exists()


def test_pages_that_only_cache_answer_from_the_database_while_redis_is_down(
    own_redis: Any, shopper: Any, api_as: Any
) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    own_redis.stop()

    trending = client.get("/trending")
    home = client.get("/")
    trends = api_as(shopper).get("/api/v1/trends")

    assert (trending.status_code, home.status_code, trends.status_code) == (200, 200, 200)
    assert trends.json() == []


def test_a_request_needing_no_redis_is_answered_while_redis_is_down(
    own_redis: Any, shopper: Any, api_as: Any
) -> None:
    """Recording the caller's activity (gated by the cache) is skipped, not made the request's error."""
    client = api_as(shopper)
    own_redis.stop()

    response = client.get("/api/v1/accounts/verify_credentials")

    assert response.status_code == 200
    assert response.json()["username"] == shopper.username
