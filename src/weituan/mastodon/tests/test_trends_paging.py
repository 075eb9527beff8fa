"""Trends as Mastodon pages them: trending statuses 20 unless asked (up to 40), and every trends list
linked onward by `offset` in its `Link` header, as Mastodon's are."""

from typing import Any

import pytest
from django.core.cache import cache

from weituan.accounts.models import User
from weituan.core.testing import make_user
from weituan.microblog.services.interactions import like_add
from weituan.microblog.services.posts import post_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def trending(shopper: User) -> list[int]:
    """Twenty-two authors, each with a post the shopper liked: 22 trending statuses."""
    cache.clear()  # the trending list is kept a few minutes
    posts = []
    for n in range(22):
        post = post_create(author=make_user(f"author{n}"), text=f"团购 {n}")
        like_add(user=shopper, post_id=post.id)
        posts.append(post.id)
    return posts


def test_trending_statuses_default_to_twenty_and_link_onward(
    api_as: Any, shopper: User, trending: list[int]
) -> None:
    client = api_as(shopper)
    first = client.get("/api/v1/trends/statuses")
    assert len(first.json()) == 20
    assert first["Link"] == '<http://testserver/api/v1/trends/statuses?offset=20>; rel="next"'
    rest = client.get("/api/v1/trends/statuses?offset=20")
    assert len(rest.json()) == 2
    assert rest["Link"] == '<http://testserver/api/v1/trends/statuses?offset=0>; rel="prev"'
    assert len(client.get("/api/v1/trends/statuses?limit=100").json()) == 22  # under the cap of 40
    seen = [status["id"] for status in first.json() + rest.json()]
    assert sorted(seen) == sorted(str(post_id) for post_id in trending)

    middle = client.get("/api/v1/trends/statuses?limit=5&offset=5")
    assert middle["Link"] == (
        '<http://testserver/api/v1/trends/statuses?limit=5&offset=10>; rel="next", '
        '<http://testserver/api/v1/trends/statuses?limit=5&offset=0>; rel="prev"'
    )


def test_trending_tags_link_onward_only_while_pages_come_full(api_as: Any, shopper: User) -> None:
    answer = api_as(shopper).get("/api/v1/trends/tags?limit=3")
    assert answer.json() == []
    assert "Link" not in answer
