"""Post impressions: each post a timeline shows someone is a `post_impression`, once per viewer, post and hour."""

from typing import Any

import pytest
from django.test import Client

from weituan.accounts.tokens import access_token_issue
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create
from weituan.tracking.facade import events_flush
from weituan.tracking.impressions import HOUR, Sights, impressions_forget
from weituan.tracking.tests.conftest import count
from weituan.tracking.visitors import VISITOR_COOKIE

pytestmark = pytest.mark.django_db

IMPRESSIONS = "SELECT count() FROM events WHERE event = 'post_impression'"


@pytest.fixture(autouse=True)
def _fresh_hour() -> None:
    impressions_forget()


def _impressions() -> list[tuple[Any, ...]]:
    from weituan.tracking.store import analytics_store

    events_flush()
    return [
        (row["user_id"], row["visitor_id"], row["post_id"], row["origin"], row["props"])
        for row in analytics_store().query(
            "SELECT user_id, visitor_id, post_id, origin, props FROM events"
            " WHERE event = 'post_impression' ORDER BY post_id"
        )
    ]


def test_a_home_read_records_each_post_shown_once_an_hour(
    shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        first = post_create(author=merchant, text="第一条")
        second = post_create(author=merchant, text="第二条")
        forward = repost_create(reposter=merchant, post_id=first.id, comment="再看看")
    raw, _ = access_token_issue(user=shopper)
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    page = api.get("/api/v1/timelines/home")
    assert page.status_code == 200 and len(page.json()) == 3
    shown = sorted([first.id, second.id, forward.id])
    home = '{"timeline":"home"}'
    assert _impressions() == [(shopper.pk, f"u:{shopper.pk}", post_id, "server", home) for post_id in shown]

    # Read again (and a page that repeats one of them): the same sights, not new ones.
    assert api.get("/api/v1/timelines/home").status_code == 200
    assert api.get(f"/api/v1/timelines/home?max_id={forward.id}").status_code == 200
    events_flush()
    assert count(IMPRESSIONS) == 3

    # Another reader's sights are their own.
    mine, _ = access_token_issue(user=merchant)
    assert (
        Client(headers={"Authorization": f"Bearer {mine}"}).get("/api/v1/timelines/public").status_code == 200
    )
    events_flush()
    assert count(IMPRESSIONS + " AND user_id = {user:UInt64}", user=merchant.pk) == 3
    assert count(IMPRESSIONS + ' AND props = \'{"timeline":"public"}\'') == 3


def test_pages_record_the_visitor_and_a_reader_nobody_knows_records_nothing(merchant: Any) -> None:
    post = post_create(author=merchant, text="今天 #双十一# 开抢")
    anonymous = Client()
    assert anonymous.get("/topics/双十一").status_code == 200
    assert anonymous.get("/api/v1/timelines/public").status_code == 200
    forged = Client()
    forged.cookies[VISITOR_COOKIE] = "<not one of ours>"  # a cookie we did not set is nobody known
    assert forged.get("/topics/双十一").status_code == 200
    assert _impressions() == []

    visitor = Client()
    visitor.cookies[VISITOR_COOKIE] = "v-1234abcd"
    assert visitor.get("/topics/双十一").status_code == 200
    assert visitor.get(f"/@{merchant.username}").status_code == 200
    topic, account = '{"timeline":"topic"}', '{"timeline":"account"}'
    assert _impressions() == [(0, "v-1234abcd", post.id, "server", topic)]
    # The same post on another page within the hour is the same sight.
    assert account not in {row[4] for row in _impressions()}


def test_the_hour_starts_afresh_and_a_full_hour_forgets() -> None:
    sights = Sights(max_sights=4)
    start = 1_000 * HOUR
    assert sights.first_sights(7, [1, 2, 2, 3], start) == [1, 2, 3]
    assert sights.first_sights(7, [3, 4], start + 10) == [4]
    assert sights.first_sights("v-1", [3], start + 20) == [3]  # another viewer
    assert sights.first_sights(7, [1], start + 30) == [1]  # four pairs were kept: the hour started afresh
    assert sights.first_sights(7, [1, 5], start + 40) == [5]
    assert sights.first_sights(7, [1, 5], start + HOUR) == [1, 5]  # the next hour
