"""A team that has not filled is offered a way out before it closes: its members are e-mailed (through a
real SMTP server) with their own e-mail-channel link, once; the leader may merge and each member may
switch to the solo price, on the web and through the API."""

from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from django.utils import timezone

from weituan.accounts.models import User
from weituan.core.testing import make_user
from weituan.deals.models import Order, OrderState, Team, TeamState
from weituan.deals.services.deals import deals_sweep
from weituan.deals.services.orders import order_place
from weituan.deals.services.teams import rescue_offer_at, team_rescue_offer
from weituan.tracking.models import ShortLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_deal(make_live_deal: Any) -> Any:
    return make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)


def _subject(message: Any) -> str:
    return str(make_header(decode_header(message["Subject"]))).replace("\r\n", "").replace("\xa0", " ")


def _buy(deal: Any, buyer: Any, team: Any) -> Any:
    return order_place(deal_id=deal.id, buyer=buyer, quantity=1, team=team)


def _people(fund: Any, *names: str, **extra: Any) -> list[Any]:
    people = [make_user(name, **extra) for name in names]
    for person in people:
        fund(person, 20_000)
    return people


def test_members_of_a_team_short_of_its_size_are_mailed_once_with_their_own_link(
    team_deal: Any, fund: Any, smtp_inbox: Any
) -> None:
    (leader,) = _people(fund, "leader", locale="en")
    (member,) = _people(fund, "member")  # no language of their own: the site's, Chinese
    (other,) = _people(fund, "other")
    first = _buy(team_deal, leader, "start")
    _buy(team_deal, member, first.team_id)
    _buy(team_deal, other, "start")  # a team with room for both

    assert team_rescue_offer(team_id=first.team_id) == 2
    mails = {message["To"]: message for message in smtp_inbox.wait(2)}
    english, chinese = mails[leader.email], mails[member.email]
    assert _subject(english) == f"Your team for {team_deal.title} closes in 23 hours, 59 minutes"
    body = english.get_payload(decode=True).decode()
    assert "move the whole team into another open team" in body
    assert "solo price of ¥80.00" in body
    assert _subject(chinese) == f"你参加的「{team_deal.title}」拼团将在 23 小时，59 分钟后结束"
    assert "单独购买价 ¥80.00" in chinese.get_payload(decode=True).decode()
    # Each member's own link, counted as e-mail's when followed.
    for person, message in ((leader, english), (member, chinese)):
        text = message.get_payload(decode=True).decode()
        code = text.rsplit("/s/", 1)[1].split()[0]
        link = ShortLink.objects.get(code=code)
        assert (link.channel, link.sharer_id, link.deal_id) == ("email", person.id, team_deal.id)
        assert link.target_url.endswith(f"/teams/{first.team_id}/")

    # Offered once: a retry (or the sweep) sends nothing more.
    assert team_rescue_offer(team_id=first.team_id) == 0
    assert deals_sweep()["rescue_offers"] == 0
    assert len(smtp_inbox.messages) == 2


def test_the_sweep_offers_what_is_due_and_a_full_team_is_never_offered(
    team_deal: Any, fund: Any, smtp_inbox: Any
) -> None:
    a, b, c, d = _people(fund, "a1", "b1", "c1", "d1")
    due = _buy(team_deal, a, "start")
    full = _buy(team_deal, b, "start")
    _buy(team_deal, c, full.team_id)
    _buy(team_deal, d, full.team_id)
    assert Team.objects.get(id=full.team_id).state == TeamState.FILLED
    # Not due yet: a 24-hour window is offered an hour before it closes.
    team = Team.objects.get(id=due.team_id)
    assert rescue_offer_at(team) == team.expires_at - timedelta(hours=1)
    assert deals_sweep()["rescue_offers"] == 0
    now = timezone.now()
    Team.objects.filter(id=due.team_id).update(
        created_at=now - timedelta(hours=23), expires_at=now + timedelta(minutes=30)
    )
    assert deals_sweep()["rescue_offers"] == 1
    assert [message["To"] for message in smtp_inbox.wait(1)] == [a.email]
    assert team_rescue_offer(team_id=full.team_id) == 0
    assert Team.objects.get(id=full.team_id).rescue_offered_at is None


def test_the_api_shows_the_offer_and_merges_or_switches(team_deal: Any, fund: Any, api_as: Any) -> None:
    leader, member, other = _people(fund, "lead2", "memb2", "othr2")
    first = _buy(team_deal, leader, "start")
    joined = _buy(team_deal, member, first.team_id)
    second = _buy(team_deal, other, "start")
    team_rescue_offer(team_id=first.team_id)

    shown = api_as(member).get(f"/api/v1/teams/{first.team_id}").json()
    assert shown["merge_options"] == [second.team_id]
    assert shown["rescue_offered_at"] is not None and shown["solo_price"] == 8_000

    refused = api_as(member).post(
        f"/api/v1/teams/{first.team_id}/merge", {"into": second.team_id}, content_type="application/json"
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_team_leader")

    solo = api_as(member).post(f"/api/v1/orders/{joined.id}/solo", HTTP_IDEMPOTENCY_KEY="solo-1")
    assert solo.status_code == 200, solo.content
    assert (solo.json()["team_id"], solo.json()["amount"]) == (None, 8_000)
    assert Order.objects.get(id=joined.id).state == OrderState.VOIDED

    merged = api_as(leader).post(
        f"/api/v1/teams/{first.team_id}/merge", {"into": second.team_id}, content_type="application/json"
    )
    assert merged.status_code == 200, merged.content
    assert (merged.json()["id"], merged.json()["members"]) == (second.team_id, 2)
    assert sorted(merged.json()["member_names"]) == sorted([leader.username, other.username])
    assert Team.objects.get(id=first.team_id).state == TeamState.MERGED
    assert User.objects.filter(id=member.id).exists()


def test_a_mail_that_fails_does_not_stop_the_others(team_deal: Any, fund: Any, smtp_inbox: Any) -> None:
    leader, member = _people(fund, "lead3", "memb3")
    first = _buy(team_deal, leader, "start")
    _buy(team_deal, member, first.team_id)
    smtp_inbox.refused.add(leader.email)  # the mail server refuses the leader's address
    assert team_rescue_offer(team_id=first.team_id) == 1
    assert [message["To"] for message in smtp_inbox.wait(1)] == [member.email]
    assert Team.objects.get(id=first.team_id).rescue_offered_at is not None


def test_no_merge_into_a_team_past_its_time(team_deal: Any, fund: Any, api_as: Any) -> None:
    leader, other = _people(fund, "lead4", "othr4")
    first = _buy(team_deal, leader, "start")
    second = _buy(team_deal, other, "start")
    Team.objects.filter(id=second.team_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = api_as(leader).post(
        f"/api/v1/teams/{first.team_id}/merge", {"into": second.team_id}, content_type="application/json"
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "team_closed")
    assert Team.objects.get(id=first.team_id).state == TeamState.OPEN
