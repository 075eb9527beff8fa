"""The team page in the browser: each member's own tracked share link, joining through it, and the
rescue forms (merge into another team, switch to the solo price) with their refusals."""

import html
import re
from typing import Any

import pytest
from django.test import Client

from weituan.core.testing import make_user
from weituan.deals.models import Order, OrderState, Posting, Team, TeamState
from weituan.deals.queries import ledger_report, wallet_of
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


def test_a_member_is_not_asked_to_join_the_team_they_are_in(team_deal: Any) -> None:
    """The leader, just after starting a team, is offered their share link and the way back to the deal,
    not "join on the deal page" (which a friend who is not in the team still gets)."""
    _, leader_browser = _shopper("leader")
    team_id = _checkout(leader_browser, team_deal, "start").team_id
    own = leader_browser.get(f"/teams/{team_id}/").content.decode()
    assert "Join on the deal page" not in own and "Join this team" not in own
    assert f'<a href="/deals/{team_deal.id}/">Back to the deal</a>' in own
    _, friend_browser = _shopper("friend")
    theirs = friend_browser.get(f"/teams/{team_id}/").content.decode()
    assert f'<a href="/deals/{team_deal.id}/">Join on the deal page</a>' in theirs
    assert "Back to the deal" not in theirs


def test_the_leader_merges_the_team_from_the_page_and_refusals_change_nothing(team_deal: Any) -> None:
    leader, leader_browser = _shopper("small_leader")
    small = _checkout(leader_browser, team_deal, "start")
    _, other_browser = _shopper("big_leader")
    other = _checkout(other_browser, team_deal, "start")
    _, member_browser = _shopper("big_member")
    _checkout(member_browser, team_deal, other.team_id or 0)
    _, full_browser = _shopper("full_leader")
    full = _checkout(full_browser, team_deal, "start")
    for n in range(2):
        _checkout(_shopper(f"full_member{n}")[1], team_deal, full.team_id or 0)
    assert _team(full.team_id).state == TeamState.FILLED
    page = leader_browser.get(f"/teams/{small.team_id}/").content.decode()
    assert f'name="into" value="{other.team_id}"' in page
    assert f'name="into" value="{full.team_id}"' not in page

    def state() -> list[tuple[int, str, int]]:
        return list(Team.objects.order_by("id").values_list("id", "state", "members"))

    before, orders_before = state(), list(Order.objects.order_by("id").values_list("id", "team_id", "state"))
    refusals = [
        # Not the leader of the team they try to move.
        (
            member_browser,
            other.team_id,
            {"into": str(small.team_id)},
            "Only the team&#x27;s leader can merge it",
        ),
        (leader_browser, small.team_id, {"into": "not a number"}, "Choose a team to merge into"),
        (leader_browser, small.team_id, {}, "Choose a team to merge into"),
        (leader_browser, small.team_id, {"into": "999999"}, "That team cannot be merged into"),
        (leader_browser, small.team_id, {"into": str(full.team_id)}, "Both teams must still be open."),
    ]
    for browser, team_id, form, message in refusals:
        response = browser.post(f"/teams/{team_id}/merge", form)
        assert (response.status_code, response["Location"]) == (302, f"/teams/{team_id}/")
        assert message in _flash(browser, response["Location"])
    signed_out = Client().post(f"/teams/{small.team_id}/merge", {"into": str(other.team_id)})
    assert signed_out["Location"].startswith("/accounts/login")
    assert leader_browser.get(f"/teams/{small.team_id}/merge").status_code == 405
    assert (state(), list(Order.objects.order_by("id").values_list("id", "team_id", "state"))) == (
        before,
        orders_before,
    )

    response = leader_browser.post(f"/teams/{small.team_id}/merge", {"into": str(other.team_id)})
    assert (response.status_code, response["Location"]) == (302, f"/teams/{other.team_id}/")
    merged, into = _team(small.team_id), _team(other.team_id)
    assert (merged.state, merged.members, merged.merged_into_id) == (TeamState.MERGED, 0, into.id)
    assert (into.state, into.members) == (TeamState.FILLED, 3)
    assert Order.objects.get(id=small.id).team_id == into.id
    deal_tip_check(deal_id=team_deal.id)
    assert set(Order.objects.filter(team_id=into.id).values_list("state", flat=True)) == {OrderState.CAPTURED}
    assert Order.objects.filter(team_id=into.id).count() == 3
    assert (wallet_of(user=leader).available, wallet_of(user=leader).held) == (15_000, 0)
    assert ledger_report().ok


def test_a_member_switches_to_the_solo_price_from_the_page_and_refusals_change_nothing(
    team_deal: Any,
) -> None:
    buyer, browser = _shopper("solo_buyer")
    _, outsider_browser = _shopper("solo_outsider")
    team_order = _checkout(browser, team_deal, "start")
    page = browser.get(f"/teams/{team_order.team_id}/").content.decode()
    assert f'action="/me/orders/{team_order.id}/solo"' in page
    assert (
        f'action="/me/orders/{team_order.id}/solo"'
        not in outsider_browser.get(f"/teams/{team_order.team_id}/").content.decode()
    )

    postings = Posting.objects.count()
    refused = outsider_browser.post(f"/me/orders/{team_order.id}/solo")
    assert refused["Location"] == "/me/orders/"
    assert "No order of yours in a team has this number." in _flash(outsider_browser, "/me/orders/")
    assert (Order.objects.count(), Posting.objects.count()) == (1, postings)
    assert Order.objects.get(id=team_order.id).state == OrderState.AUTHORIZED

    response = browser.post(f"/me/orders/{team_order.id}/solo")
    assert (response.status_code, response["Location"]) == (302, "/me/orders/")
    assert f"Order {team_order.id} left the team: a new order holds the solo price." in _flash(
        browser, "/me/orders/"
    )
    solo = Order.objects.exclude(id=team_order.id).get()
    assert Order.objects.get(id=team_order.id).state == OrderState.VOIDED
    assert (solo.buyer_id, solo.state, solo.amount, solo.unit_price, solo.team_id) == (
        buyer.id,
        OrderState.AUTHORIZED,
        8_000,
        8_000,
        None,
    )
    assert _team(team_order.team_id).members == 0
    assert (wallet_of(user=buyer).available, wallet_of(user=buyer).held) == (12_000, 8_000)

    # The voided team order cannot switch again, and a solo order has no team to leave.
    postings = Posting.objects.count()
    again = browser.post(f"/me/orders/{team_order.id}/solo")
    assert "Only a held order in an open team can switch" in _flash(browser, again["Location"])
    browser.post(f"/me/orders/{solo.id}/solo")
    assert "No order of yours in a team has this number." in _flash(browser, "/me/orders/")
    assert (Order.objects.count(), Posting.objects.count()) == (2, postings)

    deal_tip_check(deal_id=team_deal.id)
    solo.refresh_from_db()
    assert solo.state == OrderState.CAPTURED
    assert (wallet_of(user=buyer).available, wallet_of(user=buyer).held) == (12_000, 0)
    assert ledger_report().ok


def test_the_rescue_forms_offer_the_best_team_chosen_and_say_the_solo_price(team_deal: Any) -> None:
    leader, leader_browser = _shopper("leader")
    team_id = int(_checkout(leader_browser, team_deal, "start").team_id or 0)
    _, fuller_browser = _shopper("fuller")
    fullest = int(_checkout(fuller_browser, team_deal, "start").team_id or 0)
    _, joiner_browser = _shopper("joiner")
    _checkout(joiner_browser, team_deal, fullest)
    _, other_browser = _shopper("other")
    other = int(_checkout(other_browser, team_deal, "start").team_id or 0)

    page = leader_browser.get(f"/teams/{team_id}/").content.decode()
    choices = re.findall(r'<input type="radio" name="into" value="(\d+)"( checked)?>', page)
    # The fullest team comes first, chosen already: one tap on Merge takes it.
    assert choices == [(str(fullest), " checked"), (str(other), "")]
    assert "Switch to the solo price of ¥80.00 instead" in page
    chinese = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    chinese.force_login(leader)
    assert "改为单独购买，价格 ¥80.00" in chinese.get(f"/teams/{team_id}/").content.decode()

    merged = leader_browser.post(f"/teams/{team_id}/merge", {"into": choices[0][0]})
    assert merged.status_code == 302
    assert (_team(fullest).members, _team(fullest).state) == (3, TeamState.FILLED)
