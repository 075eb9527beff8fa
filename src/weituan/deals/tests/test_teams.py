from datetime import timedelta

import pytest
from django.utils import timezone

from weituan.core.errors import Conflict, PermissionDenied
from weituan.core.testing import make_user
from weituan.deals.models import Order, OrderState, Team, TeamState
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services.deals import deal_tip_check, deals_sweep
from weituan.deals.services.orders import order_place
from weituan.deals.services.teams import team_merge, team_rescue_options, team_switch_solo

pytestmark = pytest.mark.django_db


@pytest.fixture
def team_deal(make_live_deal):
    return make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)


def buyers(fund, n, prefix="tm"):
    people = [make_user(f"{prefix}{i}") for i in range(n)]
    for person in people:
        fund(person, 20_000)
    return people


def test_team_fills_and_is_captured(team_deal, fund):
    a, b, c = buyers(fund, 3)
    first = order_place(deal_id=team_deal.id, buyer=a, quantity=1, team="start")
    first_team = int(first.team_id or 0)
    order_place(deal_id=team_deal.id, buyer=b, quantity=1, team=first_team)
    # An unfilled team does not tip the deal nor get captured.
    assert deal_tip_check(deal_id=team_deal.id) is False
    assert Order.objects.get(id=first.id).state == OrderState.AUTHORIZED
    last = order_place(deal_id=team_deal.id, buyer=c, quantity=1, team=first_team)
    deal_tip_check(deal_id=team_deal.id)
    assert Team.objects.get(id=first_team).state == TeamState.FILLED
    assert set(Order.objects.values_list("state", flat=True)) == {OrderState.CAPTURED}
    assert last.unit_price == 5_000
    with pytest.raises(Conflict) as refused:
        order_place(deal_id=team_deal.id, buyer=make_user("late"), quantity=1, team=first_team)
    assert refused.value.code in ("team_closed", "insufficient_balance")


def test_expired_team_refunds_every_member(team_deal, fund):
    a, b = buyers(fund, 2)
    first = order_place(deal_id=team_deal.id, buyer=a, quantity=1, team="start")
    first_team = int(first.team_id or 0)
    order_place(deal_id=team_deal.id, buyer=b, quantity=1, team=first_team)
    Team.objects.filter(id=first_team).update(expires_at=timezone.now() - timedelta(seconds=1))
    deals_sweep()
    assert Team.objects.get(id=first_team).state == TeamState.EXPIRED
    assert set(Order.objects.values_list("state", flat=True)) == {OrderState.VOIDED}
    assert (wallet_of(user=a).available, wallet_of(user=a).held) == (20_000, 0)
    team_deal.refresh_from_db()
    assert team_deal.sold == 0
    assert ledger_report().ok


def test_rescue_merge_into_another_team(team_deal, fund):
    a, b, c = buyers(fund, 3)
    small = order_place(deal_id=team_deal.id, buyer=a, quantity=1, team="start")
    other = order_place(deal_id=team_deal.id, buyer=b, quantity=1, team="start")
    small_team_id, other_team_id = int(small.team_id or 0), int(other.team_id or 0)
    order_place(deal_id=team_deal.id, buyer=c, quantity=1, team=other_team_id)
    small_team = Team.objects.get(id=small_team_id)
    assert [t.id for t in team_rescue_options(team=small_team)] == [other_team_id]
    with pytest.raises(PermissionDenied):
        team_merge(team_id=other_team_id, into_id=small_team_id, by=c)  # not the leader
    into = team_merge(team_id=small_team_id, into_id=other_team_id, by=a)
    assert (into.state, into.members) == (TeamState.FILLED, 3)
    assert Team.objects.get(id=small_team_id).state == TeamState.MERGED
    deal_tip_check(deal_id=team_deal.id)
    assert set(Order.objects.values_list("state", flat=True)) == {OrderState.CAPTURED}


def test_rescue_switch_to_solo_price(team_deal, fund):
    (a,) = buyers(fund, 1)
    first = order_place(deal_id=team_deal.id, buyer=a, quantity=1, team="start")
    solo = team_switch_solo(order_id=first.id, by=a)
    assert Order.objects.get(id=first.id).state == OrderState.VOIDED
    deal_tip_check(deal_id=team_deal.id)
    solo.refresh_from_db()
    assert (solo.state, solo.amount, solo.team_id) == (OrderState.CAPTURED, 8_000, None)
    team_deal.refresh_from_db()
    assert team_deal.sold == 1
    assert wallet_of(user=a).available == 12_000
    assert ledger_report().ok


def test_team_window_comes_from_the_site_setting_unless_the_deal_names_one(make_live_deal, fund, settings):
    default = make_live_deal(team_price=5_000, team_size=2, deal_price=8_000)
    assert default.team_window_hours == 24
    settings.DEALS_TEAM_WINDOW_HOURS = 6
    site = make_live_deal(team_price=5_000, team_size=2, deal_price=8_000)
    own = make_live_deal(team_price=5_000, team_size=2, deal_price=8_000, team_window_hours=2)
    assert (site.team_window_hours, own.team_window_hours) == (6, 2)
    a, b, c = buyers(fund, 3)
    before = timezone.now()
    teams = [
        Team.objects.get(
            id=int(order_place(deal_id=deal.id, buyer=buyer, quantity=1, team="start").team_id or 0)
        )
        for deal, buyer in ((default, a), (site, b), (own, c))
    ]
    after = timezone.now()
    for team, hours in zip(teams, (24, 6, 2), strict=True):
        assert before + timedelta(hours=hours) <= team.expires_at <= after + timedelta(hours=hours)
    # Inside its window a team stays open; the sweep leaves it alone.
    assert deals_sweep()["teams_expired"] == 0
    assert {Team.objects.get(id=team.id).state for team in teams} == {TeamState.OPEN}


def test_a_window_outside_one_hour_to_a_week_is_refused(make_live_deal):
    from weituan.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        make_live_deal(team_price=5_000, team_size=2, deal_price=8_000, team_window_hours=200)
    assert refused.value.code == "invalid_deal"
    assert "team_window_hours must be 1 to 168" in refused.value.message


def test_a_team_its_last_member_leaves_closes_and_is_offered_to_nobody(team_deal, fund, client):
    from weituan.deals.services.holds import order_cancel

    leaver, canceller, other, joiner = buyers(fund, 4, prefix="empty")
    left = order_place(deal_id=team_deal.id, buyer=leaver, quantity=1, team="start")
    cancelled = order_place(deal_id=team_deal.id, buyer=canceller, quantity=1, team="start")
    kept = order_place(deal_id=team_deal.id, buyer=other, quantity=1, team="start")
    kept_id = int(kept.team_id or 0)
    options = team_rescue_options(team=Team.objects.get(id=kept_id))
    assert {team.id for team in options} == {left.team_id, cancelled.team_id}

    # Its only member switches to the solo price, or cancels: the team closes, empty.
    team_switch_solo(order_id=left.id, by=leaver)
    order_cancel(order_id=cancelled.id, by=canceller)
    for team_id in (int(left.team_id or 0), int(cancelled.team_id or 0)):
        team = Team.objects.get(id=team_id)
        assert (team.state, team.members) == (TeamState.EXPIRED, 0)
    kept_team = Team.objects.get(id=kept_id)
    assert (kept_team.state, kept_team.members) == (TeamState.OPEN, 1)
    assert team_rescue_options(team=kept_team) == []
    client.force_login(joiner)
    page = client.get(f"/deals/{team_deal.id}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"Join @{leaver.username}" not in page and f"Join @{other.username}" in page

    # Nobody can join it or merge into it; the open team with a member still takes both.
    with pytest.raises(Conflict):
        order_place(deal_id=team_deal.id, buyer=joiner, quantity=1, team=int(left.team_id or 0))
    with pytest.raises(Conflict):
        team_merge(team_id=kept_id, into_id=int(left.team_id or 0), by=other)
    joined = order_place(deal_id=team_deal.id, buyer=joiner, quantity=1, team=kept_id)
    assert (joined.team_id, Team.objects.get(id=kept_id).members) == (kept_id, 2)
    assert ledger_report().ok


def test_a_team_that_did_not_fill_still_names_its_members(team_deal, fund, api_as):
    from django.test import Client

    from weituan.deals.services.holds import order_cancel

    leader, joiner, quitter = buyers(fund, 3, prefix="nm")
    first = order_place(deal_id=team_deal.id, buyer=leader, quantity=1, team="start")
    team_id = int(first.team_id or 0)
    left = order_place(deal_id=team_deal.id, buyer=quitter, quantity=1, team=team_id)
    order_cancel(order_id=left.id, by=quitter)  # gave up the seat while the team was open
    order_place(deal_id=team_deal.id, buyer=joiner, quantity=1, team=team_id)
    Team.objects.filter(id=team_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    deals_sweep()
    assert set(Order.objects.filter(team_id=team_id).values_list("state", flat=True)) == {OrderState.VOIDED}

    shown = api_as(joiner).get(f"/api/v1/teams/{team_id}").json()
    assert (shown["state"], shown["members"], shown["member_names"]) == ("expired", 2, ["nm0", "nm1"])
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/teams/{team_id}/").content.decode()
    assert "<li>@nm0</li><li>@nm1</li>" in page
    assert "@nm2" not in page


def test_a_team_is_not_merged_into_one_a_member_is_already_in(make_live_deal, fund, api_as):
    from django.test import Client

    deal = make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, per_user_limit=2)
    both, leader, other = buyers(fund, 3, prefix="ov")
    first = int(order_place(deal_id=deal.id, buyer=both, quantity=1, team="start").team_id or 0)
    second = int(order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start").team_id or 0)
    order_place(deal_id=deal.id, buyer=both, quantity=1, team=second)  # in both teams
    third = int(order_place(deal_id=deal.id, buyer=other, quantity=1, team="start").team_id or 0)

    # The team it shares a member with is not offered; the other one is.
    assert [team.id for team in team_rescue_options(team=Team.objects.get(id=second))] == [third]
    refused = api_as(leader).post(
        f"/api/v1/teams/{second}/merge", data={"into": first}, content_type="application/json"
    )
    assert refused.status_code == 409
    assert refused.json() == {"error": "Someone is a member of both teams", "code": "team_overlap"}
    assert [(t.state, t.members) for t in Team.objects.filter(id__in=(first, second)).order_by("id")] == [
        (TeamState.OPEN, 1),
        (TeamState.OPEN, 2),
    ]
    assert Order.objects.filter(team_id=first).count() == 1

    page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    page.force_login(leader)
    page.post(f"/teams/{second}/merge", {"into": str(first)})
    assert "你的团里有人已经在那个团里了，请选择其他团。" in page.get(f"/teams/{second}/").content.decode()
    assert Team.objects.get(id=second).state == TeamState.OPEN
