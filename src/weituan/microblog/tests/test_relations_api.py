"""The Mastodon relation endpoints: follow/unfollow/block/mute return a Relationship; lists page with Link."""

from types import SimpleNamespace
from typing import Any

import pytest

from weituan.core import ratelimit
from weituan.microblog.models import Block, Follow, Mute, Post

pytestmark = pytest.mark.django_db


def test_follow_unfollow_return_relationships(api_as: Any, shopper: Any, merchant: Any) -> None:
    client = api_as(shopper)
    followed = client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert followed.status_code == 200
    assert (followed.json()["id"], followed.json()["following"]) == (str(merchant.pk), True)
    again = client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert again.json()["following"] is True
    assert Follow.objects.filter(follower=shopper, followee=merchant).count() == 1
    unfollowed = client.post(f"/api/v1/accounts/{merchant.pk}/unfollow")
    assert unfollowed.json()["following"] is False
    assert not Follow.objects.exists()


def test_refusals_are_json_with_codes(api_as: Any, shopper: Any, merchant: Any) -> None:
    client = api_as(shopper)
    own = client.post(f"/api/v1/accounts/{shopper.pk}/follow")
    assert (own.status_code, own.json()["code"]) == (422, "cannot_follow_self")
    missing = client.post("/api/v1/accounts/987654321/follow")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    api_as(merchant).post(f"/api/v1/accounts/{shopper.pk}/block")
    blocked = client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert (blocked.status_code, blocked.json()["code"]) == (403, "blocked")
    assert "error" in blocked.json()
    assert not Follow.objects.exists()
    anonymous = api_as(shopper).__class__().post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert anonymous.status_code == 401


def test_block_mute_and_their_lists(api_as: Any, shopper: Any, merchant: Any, outsider: Any) -> None:
    client = api_as(shopper)
    client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    blocked = client.post(f"/api/v1/accounts/{merchant.pk}/block")
    assert (blocked.json()["blocking"], blocked.json()["following"]) == (True, False)
    muted = client.post(f"/api/v1/accounts/{outsider.pk}/mute")
    assert muted.json()["muting"] is True
    assert [row["id"] for row in client.get("/api/v1/blocks").json()] == [str(merchant.pk)]
    assert [row["id"] for row in client.get("/api/v1/mutes").json()] == [str(outsider.pk)]
    seen = api_as(merchant).get(f"/api/v1/accounts/relationships?id[]={shopper.pk}").json()
    assert (seen[0]["blocked_by"], seen[0]["blocking"]) == (True, False)
    assert client.post(f"/api/v1/accounts/{merchant.pk}/unblock").json()["blocking"] is False
    assert client.post(f"/api/v1/accounts/{outsider.pk}/unmute").json()["muting"] is False
    assert client.get("/api/v1/blocks").json() == []
    assert client.get("/api/v1/mutes").json() == []


def test_relationships_for_many_ids(api_as: Any, shopper: Any, merchant: Any, outsider: Any) -> None:
    client = api_as(shopper)
    client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    found = client.get(f"/api/v1/accounts/relationships?id[]={merchant.pk}&id[]={outsider.pk}").json()
    assert [(row["id"], row["following"]) for row in found] == [
        (str(merchant.pk), True),
        (str(outsider.pk), False),
    ]
    bad = client.get("/api/v1/accounts/relationships?id[]=abc")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_id")


def test_followers_and_following_page_with_link(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any, operator: Any
) -> None:
    for user in (shopper, outsider, operator):
        api_as(user).post(f"/api/v1/accounts/{merchant.pk}/follow")
    client = api_as(shopper)
    first = client.get(f"/api/v1/accounts/{merchant.pk}/followers?limit=2")
    assert [row["id"] for row in first.json()] == [str(operator.pk), str(outsider.pk)]
    assert first.json()[0]["acct"] == "olivia"
    link = first["Link"]
    assert 'rel="next"' in link and 'rel="prev"' in link and "limit=2" in link
    next_url = link.split(">")[0].lstrip("<")
    second = client.get(next_url)
    assert [row["id"] for row in second.json()] == [str(shopper.pk)]
    following = client.get(f"/api/v1/accounts/{shopper.pk}/following").json()
    assert [row["id"] for row in following] == [str(merchant.pk)]
    assert client.get("/api/v1/accounts/987654321/followers").status_code == 404


def test_follows_blocks_and_mutes_have_a_per_minute_budget_of_their_own(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any, settings: Any, monkeypatch: Any
) -> None:
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 2
    # All of it in one window of the limit, wherever the minute's edge falls.
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))
    client = api_as(shopper)
    assert client.post(f"/api/v1/accounts/{merchant.pk}/follow").status_code == 200
    assert client.post(f"/api/v1/accounts/{outsider.pk}/block").status_code == 200
    limited = client.post(f"/api/v1/accounts/{merchant.pk}/mute")
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert (Follow.objects.count(), Block.objects.count(), Mute.objects.count()) == (1, 1, 0)
    # Posting is counted apart: its budget is untouched.
    assert client.post("/api/v1/statuses", {"status": "还能发帖"}).status_code == 200
    assert Post.objects.filter(author=shopper).count() == 1
