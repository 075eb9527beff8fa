"""Locked accounts through the Mastodon API: the test client for shapes and refusals, Mastodon.py for the
client's view of the whole flow."""

from typing import Any

import pytest
from django.test import Client
from mastodon import Mastodon

from weituan.accounts.models import User
from weituan.accounts.tokens import access_token_issue
from weituan.microblog.models import Follow, FollowRequest
from weituan.microblog.services.posts import post_create

PASSWORD = "correct horse battery"


def form(client: Any, path: str, body: str) -> Any:
    return client.patch(path, body, content_type="application/x-www-form-urlencoded")


@pytest.mark.django_db
def test_locking_requests_and_answers(
    api_as: Any, shopper: User, merchant: User, outsider: User, run_on_commit: Any
) -> None:
    owner, asker, stranger = api_as(merchant), api_as(shopper), api_as(outsider)
    assert form(owner, "/api/v1/accounts/update_credentials", "locked=true").json()["locked"] is True
    with run_on_commit():
        post_create(author=merchant, text="仅粉丝")
        relation = asker.post(f"/api/v1/accounts/{merchant.pk}/follow").json()
    assert (relation["following"], relation["requested"]) == (False, True)
    assert asker.get("/api/v1/timelines/home").json() == []

    waiting = owner.get("/api/v1/follow_requests")
    assert [account["id"] for account in waiting.json()] == [str(shopper.pk)]
    assert owner.get("/api/v1/accounts/verify_credentials").json()["source"]["follow_requests_count"] == 1
    (note,) = owner.get("/api/v1/notifications?types[]=follow_request").json()
    assert (note["type"], note["account"]["id"]) == ("follow_request", str(shopper.pk))

    # Only the owner can answer, and only a request that exists.
    missing = stranger.post(f"/api/v1/follow_requests/{shopper.pk}/authorize")
    assert missing.status_code == 404 and missing.json()["code"] == "follow_request_not_found"
    assert FollowRequest.objects.count() == 1 and Follow.objects.count() == 0

    with run_on_commit():
        answered = owner.post(f"/api/v1/follow_requests/{shopper.pk}/authorize").json()
    assert (answered["id"], answered["followed_by"], answered["requested_by"]) == (
        str(shopper.pk),
        True,
        False,
    )
    assert [s["content"] for s in asker.get("/api/v1/timelines/home").json()] == ["<p>仅粉丝</p>"]
    assert owner.get("/api/v1/follow_requests").json() == []


@pytest.mark.django_db
def test_rejecting_and_scopes(api_as: Any, shopper: User, merchant: User) -> None:
    merchant.locked = True
    merchant.save(update_fields=["locked"])
    api_as(shopper).post(f"/api/v1/accounts/{merchant.pk}/follow")
    raw, _ = access_token_issue(user=merchant, scopes="read")
    reader = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert [a["id"] for a in reader.get("/api/v1/follow_requests").json()] == [str(shopper.pk)]
    refused = reader.post(f"/api/v1/follow_requests/{shopper.pk}/authorize")
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert FollowRequest.objects.count() == 1 and Follow.objects.count() == 0
    rejected = api_as(merchant).post(f"/api/v1/follow_requests/{shopper.pk}/reject").json()
    assert (rejected["followed_by"], rejected["requested_by"]) == (False, False)
    assert FollowRequest.objects.count() == 0 and Follow.objects.count() == 0


@pytest.mark.django_db
def test_unlocking_through_update_credentials_accepts_everyone(
    api_as: Any, shopper: User, merchant: User, outsider: User
) -> None:
    owner = api_as(merchant)
    form(owner, "/api/v1/accounts/update_credentials", "locked=1")
    api_as(shopper).post(f"/api/v1/accounts/{merchant.pk}/follow")
    api_as(outsider).post(f"/api/v1/accounts/{merchant.pk}/follow")
    # Changing something else leaves the requests waiting.
    form(owner, "/api/v1/accounts/update_credentials", "display_name=%E5%B0%8F%E5%BA%97")
    assert FollowRequest.objects.count() == 2
    me = form(owner, "/api/v1/accounts/update_credentials", "locked=false").json()
    assert (me["locked"], me["followers_count"], me["source"]["follow_requests_count"]) == (False, 2, 0)
    assert sorted(Follow.objects.values_list("follower_id", flat=True)) == sorted([shopper.pk, outsider.pk])


def logged_in(live_server: Any, email: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "Weituan follow requests", scopes=["read", "write", "follow"], api_base_url=live_server.url
    )
    api = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=live_server.url,
        version_check_mode="none",
    )
    api.log_in(email, PASSWORD, allow_http=True, scopes=["read", "write", "follow"])
    return api


@pytest.mark.django_db(transaction=True)
def test_mastodon_py_walks_a_follow_request(live_server: Any, shopper: User, merchant: User) -> None:
    shop = logged_in(live_server, "meituan_shop@example.test")
    alice = logged_in(live_server, "alice@example.test")
    assert shop.account_update_credentials(locked=True).locked is True
    post_create(author=merchant, text="锁定账号的新品")
    relation = alice.account_follow(merchant.pk)
    assert (relation.following, relation.requested) == (False, True)
    assert alice.timeline_home() == []
    (waiting,) = shop.follow_requests()
    assert int(waiting.id) == shopper.pk
    (note,) = shop.notifications(types=["follow_request"])
    assert (note.type, int(note.account.id)) == ("follow_request", shopper.pk)
    accepted = shop.follow_request_authorize(shopper.pk)
    assert (accepted.followed_by, accepted.requested_by) == (True, False)
    (mine,) = alice.account_relationships([merchant.pk])
    assert (mine.following, mine.requested) == (True, False)
    assert [status.content for status in alice.timeline_home()] == ["<p>锁定账号的新品</p>"]
    assert shop.follow_requests() == []
