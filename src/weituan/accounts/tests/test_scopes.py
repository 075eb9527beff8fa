"""OAuth scopes are enforced on every API endpoint, as Mastodon enforces them; the session has them all."""

from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from weituan.accounts.models import User
from weituan.accounts.scopes import scope_covered, scopes_allow
from weituan.accounts.tokens import access_token_issue, access_token_user_id
from weituan.microblog.models import Follow, Like, Notification, Post
from weituan.microblog.services.posts import post_create
from weituan.tracking.models import ApiKey

DENIED = {
    "error": "This action is outside the authorized scopes",
    "code": "insufficient_scope",
}


def token_client(user: User, scopes: str) -> Client:
    raw, _ = access_token_issue(user=user, scopes=scopes)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_denied(response: Any, required: list[str]) -> None:
    assert response.status_code == 403
    assert response.json() == {**DENIED, "required_scopes": required}


def test_coverage_rules() -> None:
    assert scope_covered(["read"], "read:statuses")
    assert not scope_covered(["read:statuses"], "read")
    assert not scope_covered(["read:statuses"], "read:notifications")
    assert scope_covered(["follow"], "write:follows") and scope_covered(["follow"], "read:blocks")
    assert not scope_covered(["follow"], "write:statuses")
    assert scope_covered(["admin:read"], "admin:read:accounts")
    assert not scope_covered(["write"], "read:statuses")
    assert scopes_allow("profile", ("profile", "read", "read:accounts"))
    assert not scopes_allow("push", ("read", "read:statuses"))


@pytest.mark.django_db
def test_a_read_token_cannot_post_and_nothing_is_written(shopper: User, merchant: User) -> None:
    post = post_create(author=merchant, text="团购开始")
    reader = token_client(shopper, "read")
    assert_denied(reader.post("/api/v1/statuses", {"status": "hi"}), ["write", "write:statuses"])
    assert_denied(reader.post(f"/api/v1/statuses/{post.id}/favourite"), ["write", "write:favourites"])
    assert_denied(reader.post(f"/api/v1/accounts/{merchant.pk}/follow"), ["write", "follow", "write:follows"])
    assert Post.objects.count() == 1
    assert (Like.objects.count(), Follow.objects.count()) == (0, 0)
    # Everything a read token may do still works.
    assert reader.get(f"/api/v1/statuses/{post.id}").json()["id"] == str(post.id)
    assert reader.get("/api/v1/timelines/home").status_code == 200
    assert reader.get("/api/v1/notifications").json() == []


@pytest.mark.django_db
def test_granular_scopes_let_in_only_their_own_endpoints(shopper: User, merchant: User) -> None:
    post = post_create(author=merchant, text="新品")
    writer = token_client(shopper, "write:statuses")
    created = writer.post("/api/v1/statuses", {"status": "只能发帖"})
    assert created.status_code == 200 and created.json()["content"] == "<p>只能发帖</p>"
    assert_denied(writer.post(f"/api/v1/statuses/{post.id}/favourite"), ["write", "write:favourites"])
    assert Post.objects.get(id=post.id).likes_count == 0
    assert_denied(writer.get("/api/v1/notifications"), ["read", "read:notifications"])
    assert_denied(writer.get(f"/api/v1/statuses/{post.id}"), ["read", "read:statuses"])
    assert_denied(writer.get("/api/v1/timelines/home"), ["read", "read:statuses"])

    liker = token_client(shopper, "write:favourites read:notifications")
    assert liker.post(f"/api/v1/statuses/{post.id}/favourite").json()["favourited"] is True
    notifications = token_client(merchant, "read:notifications")
    assert [n["type"] for n in notifications.get("/api/v1/notifications").json()] == ["favourite"]
    assert_denied(notifications.post("/api/v1/notifications/clear"), ["write", "write:notifications"])
    assert Notification.objects.filter(recipient=merchant).count() == 1


@pytest.mark.django_db
def test_the_follow_scope_covers_relations_only(shopper: User, merchant: User, outsider: User) -> None:
    follower = token_client(shopper, "follow")
    assert follower.post(f"/api/v1/accounts/{merchant.pk}/follow").json()["following"] is True
    assert follower.post(f"/api/v1/accounts/{outsider.pk}/mute").json()["muting"] is True
    (relation,) = follower.get(f"/api/v1/accounts/relationships?id[]={merchant.pk}").json()
    assert relation["following"] is True
    assert [a["id"] for a in follower.get("/api/v1/mutes").json()] == [str(outsider.pk)]
    assert_denied(follower.post("/api/v1/statuses", {"status": "x"}), ["write", "write:statuses"])
    assert_denied(follower.get("/api/v1/timelines/home"), ["read", "read:statuses"])
    assert Post.objects.count() == 0


@pytest.mark.django_db
def test_profile_scope_reads_only_the_own_account(shopper: User, merchant: User) -> None:
    profile = token_client(shopper, "profile")
    assert profile.get("/api/v1/accounts/verify_credentials").json()["username"] == "alice"
    assert_denied(profile.get(f"/api/v1/accounts/{merchant.pk}"), ["read", "read:accounts"])
    assert_denied(
        profile.patch(
            "/api/v1/accounts/update_credentials",
            "display_name=X",
            content_type="application/x-www-form-urlencoded",
        ),
        ["write", "write:accounts"],
    )
    assert User.objects.get(pk=shopper.pk).display_name == "Alice 爱丽丝"


@pytest.mark.django_db
def test_the_home_timeline_id_lookup_needs_a_reading_scope(shopper: User) -> None:
    reading, _ = access_token_issue(user=shopper, scopes="read:statuses")
    writing, _ = access_token_issue(user=shopper, scopes="write push")
    assert access_token_user_id(reading) == shopper.pk
    assert access_token_user_id(writing) is None
    assert access_token_user_id(writing, needs=("write",)) == shopper.pk


@pytest.mark.django_db
def test_anonymous_reads_stay_open_but_a_sent_token_must_fit(shopper: User, merchant: User) -> None:
    post = post_create(author=merchant, text="公开")
    assert Client().get(f"/api/v1/statuses/{post.id}").status_code == 200
    pusher = token_client(shopper, "push")
    assert_denied(pusher.get(f"/api/v1/statuses/{post.id}"), ["read", "read:statuses"])
    # Trends are public to any token.
    assert pusher.get("/api/v1/trends/tags").status_code == 200


@pytest.mark.django_db
def test_native_deal_and_tracking_endpoints_need_read_or_write(shopper: User, merchant: User) -> None:
    reader = token_client(shopper, "read")
    before = reader.get("/api/v1/wallet")
    assert before.status_code == 200
    assert_denied(
        reader.post("/api/v1/wallet/top_up", {"amount": 500}, content_type="application/json"), ["write"]
    )
    assert reader.get("/api/v1/wallet").json() == before.json()

    # A granular Mastodon scope is not the whole of `write`: money and keys stay out of its reach.
    statuses_only = token_client(shopper, "write:statuses read:statuses")
    assert_denied(
        statuses_only.post("/api/v1/wallet/top_up", {"amount": 500}, content_type="application/json"),
        ["write"],
    )
    assert_denied(statuses_only.get("/api/v1/wallet"), ["read"])
    assert reader.get("/api/v1/wallet").json() == before.json()

    merchant_reader = token_client(merchant, "read")
    response = merchant_reader.post(
        "/api/v1/tracking/keys", {"name": "shop"}, content_type="application/json"
    )
    assert_denied(response, ["write"])
    assert ApiKey.objects.count() == 0
    merchant_writer = token_client(merchant, "write")
    assert (
        merchant_writer.post(
            "/api/v1/tracking/keys", {"name": "shop"}, content_type="application/json"
        ).status_code
        == 201
    )
    assert ApiKey.objects.count() == 1


@pytest.mark.django_db
def test_a_browser_session_has_every_scope(client: Client, shopper: User, merchant: User) -> None:
    post = post_create(author=merchant, text="团")
    client.force_login(shopper)
    assert client.post("/api/v1/statuses", {"status": "网页发帖"}).status_code == 200
    assert client.post(f"/api/v1/statuses/{post.id}/favourite").json()["favourited"] is True
    assert client.get("/api/v1/timelines/home").status_code == 200
    assert client.get("/api/v1/wallet").status_code == 200


@pytest.mark.django_db
def test_a_client_app_token_needs_write_accounts_to_register(shopper: User) -> None:
    from weituan.accounts import oauth

    app = oauth.oauth_app_create(name="reader", redirect_uris=oauth.OOB_REDIRECT_URI, scopes="read write")
    read_only = oauth.client_credentials_grant(application=app, scope="read")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {read_only.access_token}").post(
        "/api/v1/accounts",
        {
            "username": "newbie",
            "email": "newbie@example.test",
            "password": "correct horse battery",
            "agreement": "1",
        },
    )
    assert_denied(response, ["write", "write:accounts"])
    assert not User.objects.filter(username="newbie").exists()


def test_every_scope_has_its_own_description() -> None:
    from weituan.accounts.scopes import GRANULAR_SCOPES, SCOPE_DESCRIPTIONS, TOP_SCOPES, scope_description

    assert set(SCOPE_DESCRIPTIONS) == {*TOP_SCOPES, *GRANULAR_SCOPES}
    descriptions = [str(text) for text in SCOPE_DESCRIPTIONS.values()]
    assert len(set(descriptions)) == len(descriptions)
    with translation.override("en"):
        assert scope_description("write:media") == "Upload pictures"
    with translation.override("zh-hans"):
        assert scope_description("write:media") == "上传图片"
    assert scope_description("unheard:of") == "unheard:of"
