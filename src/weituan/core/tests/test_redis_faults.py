"""A Redis that goes away and comes back: requests are answered 503 with a code (never a 500), nothing is
half-written, and the same process serves again once Redis is back."""

from typing import Any

import pytest
from django.test import Client

from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_api_write_meeting_redis_down_is_a_503_with_a_code_and_writes_nothing(
    own_redis: Any, shopper: Any, api_as: Any
) -> None:
    client = api_as(shopper)
    own_redis.stop()

    response = client.post("/api/v1/statuses", {"status": "while the store is away"})

    assert response.status_code == 503
    assert response.json() == {
        "error": "The service is briefly unavailable; try again in a few seconds",
        "code": "unavailable",
    }
    assert response["Retry-After"] == "5"
    assert not Post.objects.filter(author=shopper).exists()

    own_redis.start()  # empty, as a Redis without persistence comes back
    again = client.post("/api/v1/statuses", {"status": "once it is back"})

    assert again.status_code == 200
    assert list(Post.objects.filter(author=shopper).values_list("text", flat=True)) == ["once it is back"]


def test_a_page_meeting_redis_down_says_to_try_again_in_the_readers_language(
    own_redis: Any, shopper: Any
) -> None:
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(shopper)
    own_redis.stop()

    response = client.post("/compose", {"text": "while the store is away"})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Briefly unavailable" in response.content.decode()
    zh = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE="zh-hans")
    zh.force_login(shopper)
    assert "暂时无法使用" in zh.post("/compose", {"text": "while the store is away"}).content.decode()
    assert not Post.objects.filter(author=shopper).exists()

    own_redis.start()
    assert client.post("/compose", {"text": "once it is back"}).status_code == 302
    assert Post.objects.filter(author=shopper).count() == 1


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


def test_an_oauth_request_meeting_redis_down_is_json(own_redis: Any, shopper: Any) -> None:
    client = Client(raise_request_exception=False)
    own_redis.stop()

    response = client.post(
        "/oauth/token",
        {"grant_type": "password", "username": shopper.username, "password": "correct horse battery"},
    )

    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_a_request_needing_no_redis_is_answered_while_redis_is_down(
    own_redis: Any, shopper: Any, api_as: Any
) -> None:
    """Recording the caller's activity (gated by the cache) is skipped, not made the request's error."""
    client = api_as(shopper)
    own_redis.stop()

    response = client.get("/api/v1/accounts/verify_credentials")

    assert response.status_code == 200
    assert response.json()["username"] == shopper.username
