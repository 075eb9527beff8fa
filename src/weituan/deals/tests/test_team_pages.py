"""The team page in the browser: each member's own tracked share link, and joining through it."""

import html
import re
from typing import Any

import pytest
from django.test import Client

from weituan.core.testing import make_user
from weituan.deals.models import Order, OrderState, Team, TeamState
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.wallet import wallet_top_up
from weituan.tracking.models import OutboxEvent, ShortLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_deal(make_live_deal: Any) -> Any:
    return make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)


def _shopper(name: str) -> tuple[Any, Client]:
    person = make_user(name)
    wallet_top_up(user=person, amount=20_000)
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    browser.force_login(person)
    return person, browser


def _checkout(browser: Client, deal: Any, team: str | int) -> Order:
    response = browser.post(
        f"/deals/{deal.id}/checkout", {"quantity": "1", "team": str(team), "unit_price": "5000"}
    )
    assert response.status_code == 302
    order = Order.objects.order_by("-id").first()
    assert order is not None and order.state == OrderState.AUTHORIZED
    return order


def _team(team_id: int | None) -> Team:
    assert team_id is not None
    return Team.objects.get(id=team_id)


def _share_url(page: str) -> str:
    found = re.search(r'id="team-share-url"[^>]*value="([^"]+)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def _flash(browser: Client, path: str) -> str:
    """The page `path` as the browser next sees it, with the message left by the last action."""
    return browser.get(path).content.decode()


def test_each_member_shares_the_team_through_their_own_short_link(team_deal: Any) -> None:
    leader, leader_browser = _shopper("leader")
    team_id = int(_checkout(leader_browser, team_deal, "start").team_id or 0)
    page = leader_browser.get(f"/teams/{team_id}/").content.decode()
    link = ShortLink.objects.get(sharer_id=leader.id)
    assert _share_url(page) == f"http://testserver/s/{link.code}"
    assert (link.channel, link.deal_id, link.post_id, link.campaign) == (
        "microblog",
        team_deal.id,
        team_deal.post_id,
        f"team-{team_id}",
    )
    # The same link on every visit; a second member gets a link of their own.
    leader_browser.get(f"/teams/{team_id}/")
    member, member_browser = _shopper("member")
    _checkout(member_browser, team_deal, team_id)
    member_url = _share_url(member_browser.get(f"/teams/{team_id}/").content.decode())
    assert ShortLink.objects.filter(sharer_id=leader.id).count() == 1
    assert member_url == f"http://testserver/s/{ShortLink.objects.get(sharer_id=member.id).code}"
    # A signed-out reader, whose share nobody could be credited to, sees the page's own address.
    anonymous = Client().get(f"/teams/{team_id}/").content.decode()
    assert _share_url(anonymous) == f"http://testserver/teams/{team_id}/"
    assert ShortLink.objects.count() == 2

    # A friend opens the leader's link, lands on the team page and joins from there.
    friend, friend_browser = _shopper("friend")
    landing = friend_browser.get(f"/s/{link.code}")
    assert landing.status_code == 302
    assert landing["Location"] == f"http://testserver/teams/{team_id}/?wt_s={link.code}"
    team_page = friend_browser.get(landing["Location"]).content.decode()
    assert "Join this team at ¥50.00" in team_page
    joined = _checkout(friend_browser, team_deal, team_id)
    assert (joined.buyer_id, joined.team_id) == (friend.id, team_id)
    assert (joined.share_code, joined.share_link_id) == (link.code, link.id)
    placed = OutboxEvent.objects.get(event="order_placed", payload__order_id=str(joined.id)).payload
    assert (placed["share_code"], placed["link_id"], placed["sharer_id"]) == (link.code, link.id, leader.id)
    # The team is full: it is captured, and a closed team offers no share link nor a way to join.
    assert Team.objects.get(id=team_id).state == TeamState.FILLED
    deal_tip_check(deal_id=team_deal.id)
    closed = friend_browser.get(f"/teams/{team_id}/").content.decode()
    assert 'id="team-share-url"' not in closed and "Join this team" not in closed


def test_a_signed_out_friend_is_asked_to_log_in_to_join(team_deal: Any) -> None:
    _, leader_browser = _shopper("leader")
    team_id = _checkout(leader_browser, team_deal, "start").team_id
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/teams/{team_id}/").content.decode()
    assert f'href="/accounts/login?next=/teams/{team_id}/"' in page
    assert "Log in to join this team" in page
