"""Server-side events of the micro-blog (like, comment, repost, follow) and of deal views: each lands in
the analytics store exactly once, written with its change (through the outbox: a rolled-back change
records nothing), and a refused or repeated action records nothing."""

import json
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from weituan.core.testing import make_user
from weituan.deals.tests.conftest import live_deal
from weituan.microblog.services.interactions import comment_create, like_add
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import block_create, follow_create
from weituan.tracking.facade import events_flush
from weituan.tracking.store import analytics_store
from weituan.tracking.tests.conftest import store  # noqa: F401 - an empty analytics store per test

pytestmark = pytest.mark.django_db

SERVER_EVENTS = (
    "SELECT event, user_id, visitor_id, post_id, deal_id, props FROM events"
    " WHERE origin = 'server' ORDER BY ts, event_id"
)


def server_events() -> list[dict[str, Any]]:
    """The server-side events stored since the last call."""
    events_flush()
    rows = analytics_store().query(SERVER_EVENTS, {})
    analytics_store().execute("TRUNCATE TABLE events")
    return [{**row, "props": json.loads(row["props"])} for row in rows]


def test_a_like_a_comment_and_a_repost_through_the_api_each_land_once(
    api_as: Any, shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    post = post_create(author=merchant, text="今日特价")
    client = api_as(shopper)
    with run_on_commit():
        assert client.post(f"/api/v1/statuses/{post.id}/favourite").status_code == 200
    with run_on_commit():
        reply = client.post("/api/v1/statuses", {"status": "几点开门？", "in_reply_to_id": str(post.id)})
    with run_on_commit():
        reblog = client.post(f"/api/v1/statuses/{post.id}/reblog")
    with run_on_commit():
        quote = client.post("/api/v1/statuses", {"status": "冲", "quoted_status_id": str(post.id)})
    assert (reply.status_code, reblog.status_code, quote.status_code) == (200, 200, 200)
    comment_id = int(reply.json()["id"])
    repost_id, quote_id = int(reblog.json()["id"]), int(quote.json()["id"])
    user = f"u:{shopper.pk}"  # an API client has no browser cookie: the visitor is the user
    assert server_events() == [
        {"event": "like", "user_id": shopper.pk, "visitor_id": user, "post_id": post.id, "deal_id": 0,
         "props": {}},
        {"event": "comment", "user_id": shopper.pk, "visitor_id": user, "post_id": post.id, "deal_id": 0,
         "props": {"comment_id": comment_id}},
        {"event": "repost", "user_id": shopper.pk, "visitor_id": user, "post_id": post.id, "deal_id": 0,
         "props": {"repost_id": repost_id, "root_id": post.id, "depth": 1}},
        {"event": "repost", "user_id": shopper.pk, "visitor_id": user, "post_id": post.id, "deal_id": 0,
         "props": {"repost_id": quote_id, "root_id": post.id, "depth": 1}},
    ]  # fmt: skip


def test_repeated_and_refused_actions_record_nothing(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    post = post_create(author=merchant, text="今日特价")
    client = api_as(shopper)
    with run_on_commit():
        client.post(f"/api/v1/statuses/{post.id}/favourite")
        client.post(f"/api/v1/statuses/{post.id}/reblog")
        client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert [row["event"] for row in server_events()] == ["like", "repost", "follow"]
    with run_on_commit():
        assert client.post(f"/api/v1/statuses/{post.id}/favourite").status_code == 200  # already liked
        assert client.post(f"/api/v1/statuses/{post.id}/reblog").status_code == 200  # the same reblog
        assert client.post(f"/api/v1/accounts/{merchant.pk}/follow").status_code == 200  # already following
    block_create(blocker=merchant, blocked_id=outsider.pk)
    refused = api_as(outsider)
    with run_on_commit():
        assert refused.post(f"/api/v1/statuses/{post.id}/favourite").status_code == 403
        assert refused.post(f"/api/v1/statuses/{post.id}/reblog").status_code == 403
        answer = refused.post("/api/v1/statuses", {"status": "差评", "in_reply_to_id": str(post.id)})
        assert answer.status_code == 403
        assert refused.post(f"/api/v1/accounts/{merchant.pk}/follow").status_code == 403
        assert client.post("/api/v1/statuses/999999999/favourite").status_code == 404
    assert server_events() == []


def test_a_follow_through_the_api_lands_once_and_a_request_only_when_authorized(
    api_as: Any, shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        assert api_as(shopper).post(f"/api/v1/accounts/{merchant.pk}/follow").status_code == 200
    assert server_events() == [
        {"event": "follow", "user_id": shopper.pk, "visitor_id": f"u:{shopper.pk}", "post_id": 0,
         "deal_id": 0, "props": {"followee_id": merchant.pk}},
    ]  # fmt: skip
    locked = make_user("bob", locked=True)
    with run_on_commit():
        assert api_as(shopper).post(f"/api/v1/accounts/{locked.pk}/follow").status_code == 200
    assert server_events() == []  # a request is not a follow
    with run_on_commit():
        answer = api_as(locked).post(f"/api/v1/follow_requests/{shopper.pk}/authorize")
    assert answer.status_code == 200, answer.content
    assert [(row["event"], row["user_id"], row["props"]) for row in server_events()] == [
        ("follow", shopper.pk, {"followee_id": locked.pk})
    ]


def test_an_action_rolled_back_with_its_transaction_records_nothing(shopper: Any, merchant: Any) -> None:
    post = post_create(author=merchant, text="今日特价")
    with pytest.raises(RuntimeError), transaction.atomic():
        like_add(user=shopper, post_id=post.id)
        follow_create(follower=shopper, followee_id=merchant.pk)
        raise RuntimeError("the request failed after the writes")
    assert server_events() == []
    assert like_add(user=shopper, post_id=post.id)
    assert [row["event"] for row in server_events()] == ["like"]


def test_actions_on_a_deal_post_and_anything_under_it_carry_the_deal(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    deal = live_deal(merchant)
    hop1 = repost_create(reposter=outsider, post_id=deal.post_id, comment="拼一个")
    remark = comment_create(author=outsider, post_id=deal.post_id, text="好价")
    assert [(row["event"], row["post_id"], row["deal_id"]) for row in server_events()] == [
        ("repost", deal.post_id, deal.id),
        ("comment", deal.post_id, deal.id),
    ]
    client = api_as(shopper)
    with run_on_commit():
        client.post(f"/api/v1/statuses/{hop1.id}/favourite")
        client.post(f"/api/v1/statuses/{remark.id}/favourite")
        client.post("/api/v1/statuses", {"status": "同求", "in_reply_to_id": str(hop1.id)})
        client.post(f"/api/v1/statuses/{hop1.id}/reblog")
    assert [(row["event"], row["post_id"], row["deal_id"]) for row in server_events()] == [
        ("like", hop1.id, deal.id),
        ("like", remark.id, deal.id),
        ("comment", hop1.id, deal.id),
        ("repost", hop1.id, deal.id),
    ]


def test_a_like_in_the_browser_carries_the_visitor_cookie(
    shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    post = post_create(author=merchant, text="今日特价")
    client = Client()
    client.force_login(shopper)
    client.cookies["wt_vid"] = "visitor-0000-aaaa"
    with run_on_commit():
        assert client.post(f"/p/{post.id}/like").status_code == 302
    with run_on_commit():
        assert client.post(f"/p/{post.id}/like").status_code == 302  # already liked
    assert server_events() == [
        {"event": "like", "user_id": shopper.pk, "visitor_id": "visitor-0000-aaaa", "post_id": post.id,
         "deal_id": 0, "props": {}},
    ]  # fmt: skip


def test_a_rolled_back_like_records_nothing(shopper: Any, merchant: Any) -> None:
    from django.db import transaction

    from weituan.microblog.services.interactions import like_add

    post = post_create(author=merchant, text="今日特价")
    with pytest.raises(RuntimeError), transaction.atomic():
        assert like_add(user=shopper, post_id=post.id)
        raise RuntimeError("the request failed after the like")
    assert server_events() == []


def test_a_deal_viewed_on_its_page_and_over_the_api_is_recorded_each_time(
    api_as: Any, shopper: Any, merchant: Any
) -> None:
    deal = live_deal(merchant)
    browser = Client()
    browser.cookies["wt_vid"] = "visitor-0000-bbbb"
    assert browser.get(f"/deals/{deal.id}/?wt_s=Ab3xYz9Q").status_code == 200
    assert api_as(shopper).get(f"/api/v1/deals/{deal.id}").status_code == 200
    assert Client().get("/api/v1/deals/999999999").status_code == 404
    events_flush()
    rows = analytics_store().query(
        "SELECT event, user_id, visitor_id, deal_id, url FROM events WHERE origin = 'server' ORDER BY ts", {}
    )
    assert rows == [
        {"event": "deal_view", "user_id": 0, "visitor_id": "visitor-0000-bbbb", "deal_id": deal.id,
         "url": f"http://testserver/deals/{deal.id}/?wt_s=Ab3xYz9Q"},
        {"event": "deal_view", "user_id": shopper.pk, "visitor_id": f"u:{shopper.pk}", "deal_id": deal.id,
         "url": f"http://testserver/api/v1/deals/{deal.id}"},
    ]  # fmt: skip


def test_a_follow_from_a_profile_page_carries_the_visitor_cookie(
    shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    client = Client()
    client.force_login(shopper)
    client.cookies["wt_vid"] = "visitor-0000-bbbb"
    with run_on_commit():
        followed = client.post(f"/@{merchant.username}/relation", {"action": "follow"})
    assert followed.status_code == 302
    assert [(row["event"], row["user_id"], row["visitor_id"], row["props"]) for row in server_events()] == [
        ("follow", shopper.pk, "visitor-0000-bbbb", {"followee_id": merchant.pk})
    ]
