"""Read markers, through the real Mastodon.py against a live server: the home timeline's reading position
kept for the next device, the notifications marker beside it, each answered only where asked."""

from typing import Any

import httpx
import pytest

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer
from weituan.microblog.models import HomeReadMarker

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_home_marker_is_kept_and_read_back(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan markers")
    fan.account_follow(shop.account_verify_credentials().id)
    older, newer = shop.status_post("第一条"), shop.status_post("第二条")
    assert fan.markers_get("home") == {}  # no position yet: no marker, as Mastodon answers

    moved = fan.markers_set("home", older.id)
    assert list(moved) == ["home"]
    assert (moved.home.last_read_id, moved.home.version) == (older.id, 1)
    again = fan.markers_set("home", newer.id)
    assert (again.home.last_read_id, again.home.version) == (newer.id, 2)

    # Another device (another token) opens where the first left off.
    assert fan.markers_get("home").home.last_read_id == newer.id
    both = fan.markers_get(["home", "notifications"])
    assert sorted(both) == ["home", "notifications"]
    assert list(fan.markers_get("notifications")) == ["notifications"]
    # The shop's own position is its own.
    assert shop.markers_get("home") == {}


def test_markers_posted_as_a_form_and_refused_when_not_an_id(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan markers")
    post = shop.status_post("第一条")
    headers = {"Authorization": f"Bearer {fan.access_token}"}
    answer = httpx.post(
        f"{live_server.url}/api/v1/markers", data={"home[last_read_id]": str(post.id)}, headers=headers
    )
    assert answer.status_code == 200
    assert answer.json()["home"]["last_read_id"] == str(post.id)
    refused = httpx.post(
        f"{live_server.url}/api/v1/markers", json={"home": {"last_read_id": "yesterday"}}, headers=headers
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_id")
    too_big = httpx.post(
        f"{live_server.url}/api/v1/markers", json={"home": {"last_read_id": str(1 << 70)}}, headers=headers
    )
    assert (too_big.status_code, too_big.json()["code"]) == (422, "invalid_id")
    assert list(HomeReadMarker.objects.values_list("last_read_id", "version")) == [(int(post.id), 1)]
