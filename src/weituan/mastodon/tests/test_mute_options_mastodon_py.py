"""Mastodon.py's `account_mute(id, notifications=..., duration=...)` against a live server: the
Relationship's `muting_notifications`, the mute list's `mute_expires_at`, muting again, a refused
duration, and a mute that ends by itself (the clock moved, not waited for)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mastodon import Mastodon

from weituan.accounts.models import User
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

PASSWORD = "correct horse battery"  # the persona fixtures' password
SCOPES = ["read", "write", "follow"]


def logged_in(live_server: Any, email: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "Weituan mute test", scopes=SCOPES, api_base_url=live_server.url
    )
    api = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=live_server.url,
        version_check_mode="none",
    )
    api.log_in(email, PASSWORD, allow_http=True, scopes=SCOPES)
    return api


@pytest.fixture
def alice(live_server: Any, shopper: User) -> Iterator[Mastodon]:
    """The shopper signed in through Mastodon.py; its kept-alive connection is closed after the test,
    so the live server does not close it during the next one."""
    api = logged_in(live_server, "alice@example.test")
    yield api
    api.session.close()


@pytest.mark.django_db(transaction=True)
def test_a_mute_keeping_notifications_for_a_minute(
    alice: Mastodon, shopper: User, merchant: User, clock: Any
) -> None:
    api = alice
    api.account_follow(merchant.pk)
    post_create(author=merchant, text="今日特价")

    muted = api.account_mute(merchant.pk, notifications=False, duration=60)
    assert (int(muted.id), muted.muting, muted.muting_notifications) == (merchant.pk, True, False)
    (seen,) = api.account_relationships([merchant.pk])
    assert (seen.muting, seen.muting_notifications, seen.following) == (True, False, True)
    (listed,) = api.mutes()
    assert int(listed.id) == merchant.pk
    ends = listed.mute_expires_at
    if isinstance(ends, str):
        ends = datetime.fromisoformat(ends.replace("Z", "+00:00"))
    assert abs(ends - (datetime.now(UTC) + timedelta(seconds=60))) < timedelta(seconds=10)
    assert api.timeline_home() == []

    # Their notifications still come while their posts stay hidden.
    follow_create(follower=merchant, followee_id=shopper.pk)
    post_create(author=merchant, text="@alice 新品到了")
    assert sorted(n.type for n in api.notifications()) == ["follow", "mention"]
    assert api.notifications_unread_count().count == 2

    # A minute later the mute is over, though nothing has deleted it yet.
    clock.forward(61)
    (seen,) = api.account_relationships([merchant.pk])
    assert (seen.muting, seen.muting_notifications) == (False, False)
    assert api.mutes() == []
    assert len(api.timeline_home()) == 2


@pytest.mark.django_db(transaction=True)
def test_muting_again_sets_both_options_anew(alice: Mastodon, merchant: User) -> None:
    api = alice
    api.account_mute(merchant.pk, notifications=False, duration=3600)
    again = api.account_mute(merchant.pk)
    assert (again.muting, again.muting_notifications) == (True, True)
    (listed,) = api.mutes()
    assert listed.mute_expires_at is None

    assert api.account_unmute(merchant.pk).muting is False
    assert api.mutes() == []


@pytest.mark.parametrize("duration", ["-1", "1.5", "abc", "60s"])
def test_a_duration_that_is_not_whole_seconds_gets_a_stable_code(
    api_as: Any, shopper: User, merchant: User, duration: str
) -> None:
    answer = api_as(shopper).post(f"/api/v1/accounts/{merchant.pk}/mute", {"duration": duration})
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_duration"
    (seen,) = api_as(shopper).get(f"/api/v1/accounts/relationships?id[]={merchant.pk}").json()
    assert seen["muting"] is False


def test_json_options_and_their_defaults(api_as: Any, shopper: User, merchant: User) -> None:
    client = api_as(shopper)
    url = f"/api/v1/accounts/{merchant.pk}/mute"
    answer = client.post(url, {"notifications": False, "duration": 600}, content_type="application/json")
    assert (answer.status_code, answer.json()["muting_notifications"]) == (200, False)
    (listed,) = client.get("/api/v1/mutes").json()
    assert listed["mute_expires_at"] is not None
    answer = client.post(url, {"duration": 0}, content_type="application/json")
    assert (answer.json()["muting"], answer.json()["muting_notifications"]) == (True, True)
    (listed,) = client.get("/api/v1/mutes").json()
    assert listed["mute_expires_at"] is None
