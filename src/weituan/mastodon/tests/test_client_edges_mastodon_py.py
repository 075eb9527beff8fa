"""What a Mastodon client meets at the edges of the API, through the real Mastodon.py against a live
server: endpoints Weituan does not offer, and errors a client must be able to read."""

import time
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from mastodon import MastodonNotFoundError, MastodonRatelimitError

from weituan.accounts.models import User
from weituan.core import ratelimit
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_endpoint_weituan_does_not_offer_is_a_404_the_client_reads(
    live_server: Any, merchant: User
) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edges")
    post = shop.status_post("今晚八点开团")
    # Bookmarks and pins are not offered; the client is told so in the API's words, not with a page.
    with pytest.raises(MastodonNotFoundError) as refused:
        fan.status_bookmark(post.id)
    assert refused.value.args[1:] == (404, "Not Found", "Record not found")
    with pytest.raises(MastodonNotFoundError):
        shop.status_pin(post.id)


def test_a_rate_limited_client_is_told_when_to_come_back(
    live_server: Any, merchant: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, fan = shop_and_newcomer(live_server, "Weituan edges")
    # The clock held still at the start of a minute, so the window cannot turn mid-test.
    window_start = int(time.time()) // 60 * 60
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
