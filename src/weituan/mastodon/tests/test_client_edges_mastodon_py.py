"""What a Mastodon client meets at the edges of the API, through the real Mastodon.py against a live
server: endpoints Weituan does not offer, and errors a client must be able to read."""

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError, MastodonNotFoundError, MastodonRatelimitError

from weituan.accounts.models import User
from weituan.core import ratelimit
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_endpoint_weituan_does_not_offer_is_a_404_the_client_reads(
    live_server: Any, merchant: User
) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edges")
    post = shop.status_post("今晚八点开团")
    # Muting a conversation is not offered (comments are one level deep, under their post); the client
    # is told so in the API's words, not with a page.
    with pytest.raises(MastodonNotFoundError) as refused:
        fan.status_mute(post.id)
    assert refused.value.args[1:] == (404, "Not Found", "Record not found")
    with pytest.raises(MastodonNotFoundError):
        shop.status_unmute(post.id)


def test_a_rate_limited_client_is_told_when_to_come_back(
    live_server: Any, merchant: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, fan = shop_and_newcomer(live_server, "Weituan edges")
    # The limiter's clock held still at the start of a minute, so its window cannot turn mid-test; a
    # minute whose end is at least 30 s ahead of the real clock, which Mastodon.py checks the reset
    # against (a reset already past it forgets).
    window_start = (int(time.time()) + 30) // 60 * 60
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: window_start + 1.0))
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 1
    fan.ratelimit_method = "throw"
    fan.status_post("第一条")
    with pytest.raises(MastodonRatelimitError):
        fan.status_post("第二条")
    # Mastodon.py read the X-RateLimit-* headers of the 429: it knows the limit and when it resets,
    # so in its "wait" and "pace" modes it sleeps until then instead of guessing.
    assert (fan.ratelimit_limit, fan.ratelimit_remaining) == (1, 0)
    assert fan.ratelimit_reset is not None
    assert abs(fan.ratelimit_reset - (window_start + 60)) < 5  # its clock and the server's agree


def test_the_429_headers_name_the_window(
    live_server: Any, merchant: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, _ = shop_and_newcomer(live_server, "Weituan edges")
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 1
    headers = {"Authorization": f"Bearer {shop.access_token}"}
    post = requests.post(f"{live_server.url}/api/v1/statuses", data={"status": "一"}, headers=headers)
    assert post.status_code == 200
    # The next write, and a like through the slower path, share the budget and the answer.
    for path, data in [
        ("/api/v1/statuses", {"status": "二"}),
        (f"/api/v1/statuses/{post.json()['id']}/favourite", {}),
    ]:
        refused = requests.post(f"{live_server.url}{path}", data=data, headers=headers)
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "Too many requests; try again in 30 s",
            "code": "rate_limited",
            "retry_after": 30,
        }
        assert refused.headers["Retry-After"] == "30"
        assert refused.headers["X-RateLimit-Limit"] == "1"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.headers["X-RateLimit-Reset"] == "2027-01-15T08:01:00.000Z"


def test_an_application_token_reads_what_is_public_and_is_told_it_is_nobody(
    live_server: Any, merchant: User
) -> None:
    shop, _ = shop_and_newcomer(live_server, "Weituan edges")
    post = shop.status_post("公开的团购")
    client_id, client_secret = Mastodon.create_app(
        "Weituan app token", scopes=["read", "write"], api_base_url=live_server.url
    )
    granted = requests.post(
        f"{live_server.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "read write",
        },
    ).json()
    app = Mastodon(
        access_token=granted["access_token"], api_base_url=live_server.url, version_check_mode="none"
    )
    assert app.app_verify_credentials().name == "Weituan app token"
    # What anyone may read, the application's own token reads too, as nobody in particular.
    assert [status.id for status in app.timeline_public()] == [post.id]
    assert app.status(post.id).favourited is False
    assert app.account_lookup("meituan_shop").id == shop.me().id
    # Where a user is needed, it is told so with Mastodon's 422, not a 401 that reads as "revoked".
    with pytest.raises(MastodonAPIError) as refused:
        app.account_verify_credentials()
    status, _, message = refused.value.args[1:]
    assert (status, message) == (422, "This method requires an authenticated user")
    for call in (app.timeline_home, app.notifications, lambda: app.status_post("谁发的？")):
        with pytest.raises(MastodonAPIError) as refused:
            call()
        assert refused.value.args[1] == 422
    home = requests.get(
        f"{live_server.url}/api/v1/timelines/home",
        headers={"Authorization": f"Bearer {granted['access_token']}"},
    )
    assert home.json() == {"error": "This method requires an authenticated user", "code": "user_required"}
    assert [status.id for status in shop.account_statuses(shop.me().id)] == [post.id]


def test_the_instance_counts_its_statuses(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edges")
    assert fan.instance_v1().stats.status_count == 0
    first = shop.status_post("一号团")
    shop.status_post("二号团")
    fan.status_post("我也来")
    stats = fan.instance_v1().stats
    assert (stats.user_count, stats.status_count, stats.domain_count) == (2, 3, 0)
    shop.status_delete(first.id)
    assert fan.instance_v1().stats.status_count == 2
    assert fan.instance_v1().stats.status_count == sum(
        account.statuses_count for account in (shop.me(), fan.me())
    )


def test_a_status_scheduled_for_later_is_refused_not_published_now(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edges")
    later = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(MastodonAPIError) as refused:
        shop.status_post("明天零点开抢", scheduled_at=later)
    status, _, message = refused.value.args[1:]
    assert (status, message) == (422, "Scheduled statuses are not supported")
    assert shop.account_statuses(shop.me().id) == []
    assert fan.status_post("现在就发", scheduled_at=None).content == "<p>现在就发</p>"


def test_a_status_behind_a_content_warning_is_refused_not_published_bare(
    live_server: Any, merchant: User
) -> None:
    shop, _ = shop_and_newcomer(live_server, "Weituan warnings")
    for extra in ({"spoiler_text": "剧透"}, {"sensitive": True}):
        with pytest.raises(MastodonAPIError) as refused:
            shop.status_post("结局是……", **extra)
        status, _, message = refused.value.args[1:]
        assert (status, message) == (422, "Content warnings and sensitive media are not supported")
    assert shop.account_statuses(shop.me().id) == []
    # What a client sends by default (no warning, media not sensitive) posts as ever.
    assert shop.status_post("没有剧透", sensitive=False, spoiler_text="").content == "<p>没有剧透</p>"
