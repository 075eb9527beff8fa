"""The follow requests page of a locked account, the "requested" state on a profile, and the lock switch."""

from typing import Any

import pytest

from weituan.microblog.models import Follow, FollowRequest, Notification
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

HTMX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


def lock(user: Any) -> None:
    user.locked = True
    user.save(update_fields=["locked"])


def test_following_a_locked_profile_shows_requested_and_hides_the_posts(
    client: Any, shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    lock(merchant)
    with run_on_commit():
        post_create(author=merchant, text="锁定小店的帖子")
    client.force_login(shopper)
    with run_on_commit():
        response = client.post("/@meituan_shop/relation", {"action": "follow"}, **HTMX)
    body = response.content.decode()
    assert 'data-following="requested"' in body and 'value="unfollow"' in body
    assert list(FollowRequest.objects.values_list("requester_id", "target_id")) == [(shopper.pk, merchant.pk)]
    assert Follow.objects.count() == 0
    profile = client.get("/@meituan_shop").content.decode()
    assert 'data-following="requested"' in profile and 'class="locked-badge' in profile
    assert "锁定小店的帖子" not in client.get("/").content.decode()
    # Cancelling withdraws the request.
    client.post("/@meituan_shop/relation", {"action": "unfollow"}, **HTMX)
    assert FollowRequest.objects.count() == 0


def test_the_owner_reviews_requests_from_notifications(
    client: Any, shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    lock(merchant)
    with run_on_commit():
        post_create(author=merchant, text="批准后才看得到")
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=outsider, followee_id=merchant.pk)
    client.force_login(merchant)
    notifications = client.get("/notifications").content.decode()
    assert notifications.count('data-kind="follow_request"') == 2
    assert 'href="/follow-requests"' in notifications

    page = client.get("/follow-requests").content.decode()
    assert page.count('class="follow-request"') == 2
    assert '<span class="muted small" id="follow-requests-pending">2</span>' in page
    assert page.index(f'id="follow-request-{outsider.pk}"') < page.index(f'id="follow-request-{shopper.pk}"')

    with run_on_commit():
        approved = client.post("/follow-requests/alice", {"decision": "authorize"}, **HTMX)
    assert f'id="follow-request-{shopper.pk}"' in approved.content.decode()
    assert 'class="follow-request decided"' in approved.content.decode()
    declined = client.post("/follow-requests/charlie", {"decision": "reject"})
    assert declined.status_code == 302 and declined["Location"] == "/follow-requests"
    assert list(Follow.objects.values_list("follower_id", "followee_id")) == [(shopper.pk, merchant.pk)]
    assert FollowRequest.objects.count() == 0
    assert 'class="follow-request"' not in client.get("/follow-requests").content.decode()

    client.force_login(shopper)
    assert "批准后才看得到" in client.get("/").content.decode()


def test_only_the_owner_can_answer_and_bad_decisions_change_nothing(
    client: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    lock(merchant)
    follow_create(follower=shopper, followee_id=merchant.pk)
    client.force_login(outsider)
    refused = client.post("/follow-requests/alice", {"decision": "authorize"}, **HTMX)
    assert refused.status_code == 404
    client.force_login(merchant)
    assert client.post("/follow-requests/alice", {"decision": "maybe"}, **HTMX).status_code == 422
    assert FollowRequest.objects.count() == 1 and Follow.objects.count() == 0
    assert client.get("/follow-requests").status_code == 200
    client.logout()
    assert client.get("/follow-requests").status_code == 302


def test_the_lock_switch_and_unlocking_approves_everyone(
    client: Any, shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    client.force_login(merchant)
    assert client.post("/follow-requests/lock", {"locked": "1"}).status_code == 302
    merchant.refresh_from_db()
    assert merchant.locked is True
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
    assert Notification.objects.filter(kind="follow_request").count() == 1
    with run_on_commit():
        client.post("/follow-requests/lock", {"locked": "0"})
    merchant.refresh_from_db()
    assert merchant.locked is False
    assert list(Follow.objects.values_list("follower_id", "followee_id")) == [(shopper.pk, merchant.pk)]
    assert FollowRequest.objects.count() == 0
