"""Buyers joining a team while its members cancel, switch to the solo price or are merged in, all at once
on PostgreSQL: every path takes the deal's, the team's and the buyer's rows in one order, so none of them
ends in a deadlock, and the team, the deal and the ledger agree afterwards."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.db.models import Sum

from weituan.core.errors import ServiceError
from weituan.core.testing import make_user
from weituan.deals.models import Deal, Order, OrderState, Team, TeamState, UserDealQuota
from weituan.deals.models.orders import STOCK_STATES
from weituan.deals.queries import ledger_report
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.teams import team_merge, team_switch_solo
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 4
JOINERS = 12
CANCELLING = 8
SWITCHING = 3


@pytest.fixture(autouse=True)
def _tip_checks_only_when_called(settings: Any) -> None:
    # The deal is far from its tipping point: the checks its orders enqueue would only add load.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def _buyer(name: str) -> Any:
    user = make_user(name)
    wallet_top_up(user=user, amount=50_000)
    return user


def _all_at_once(calls: list[Callable[[], Any]]) -> list[str]:
    """Run each call on a thread of its own (its own connection), released together; returns each
    outcome: "done", the code of a refusal, or the error it raised."""
    barrier = threading.Barrier(len(calls))
    outcomes = [""] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait()
            calls[index]()
            outcomes[index] = "done"
        except ServiceError as exc:
            outcomes[index] = exc.code
        except Exception as exc:
            outcomes[index] = f"{type(exc).__name__}: {exc}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _team_of(order: Order) -> int:
    assert order.team_id is not None
    return order.team_id


def _round_at_once(deal: Any, round_: int) -> None:
    """One team with members and one smaller team, then everything at once: buyers join the team while
    some of its members cancel and others switch to the solo price, the smaller team's leader merges it
    in and one of its members cancels."""
    leader = _buyer(f"lead{round_}")
    team_id = _team_of(order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start"))
    members = [
        order_place(deal_id=deal.id, buyer=_buyer(f"m{round_}x{i}"), quantity=1, team=team_id)
        for i in range(CANCELLING + SWITCHING)
    ]
    small_leader = _buyer(f"small{round_}")
    small_id = _team_of(order_place(deal_id=deal.id, buyer=small_leader, quantity=1, team="start"))
    small_members = [
        order_place(deal_id=deal.id, buyer=_buyer(f"s{round_}x{i}"), quantity=1, team=small_id)
        for i in range(2)
    ]
    joiners = [_buyer(f"j{round_}x{i}") for i in range(JOINERS)]

    def join(buyer: Any) -> Callable[[], Any]:
        return lambda: order_place(deal_id=deal.id, buyer=buyer, quantity=1, team=team_id)

    def cancel(order: Order) -> Callable[[], Any]:
        return lambda: order_cancel(order_id=order.id, by=order.buyer)

    def go_solo(order: Order) -> Callable[[], Any]:
        return lambda: team_switch_solo(order_id=order.id, by=order.buyer)

    calls = [join(buyer) for buyer in joiners]
    calls += [cancel(order) for order in members[:CANCELLING] + small_members[:1]]
    calls += [go_solo(order) for order in members[CANCELLING:]]
    calls.append(lambda: team_merge(team_id=small_id, into_id=team_id, by=small_leader))
    outcomes = _all_at_once(calls)
    assert outcomes == ["done"] * len(calls), [outcome for outcome in outcomes if outcome != "done"]

    # The big team holds its leader, the joiners and the small team's leader and remaining member;
    # the members who cancelled or switched left it.
    team = Team.objects.get(id=team_id)
    seated = Order.objects.filter(team=team, state=OrderState.AUTHORIZED)
    assert (team.state, team.members) == (TeamState.OPEN, seated.count())
    assert team.members == 1 + JOINERS + 2
    small = Team.objects.get(id=small_id)
    assert (small.state, small.members, small.merged_into_id) == (TeamState.MERGED, 0, team_id)
    assert not Order.objects.filter(team=small).exists()
    left = [order.id for order in members + small_members[:1]]
    assert set(Order.objects.filter(id__in=left).values_list("state", flat=True)) == {OrderState.VOIDED}
    # The members who switched hold a solo order each instead.
    switched = {order.buyer_id for order in members[CANCELLING:]}
    solo = Order.objects.filter(deal=deal, team__isnull=True, state=OrderState.AUTHORIZED)
    assert set(solo.filter(buyer_id__in=switched).values_list("buyer_id", flat=True)) == switched


def test_joins_cancels_switches_and_a_merge_on_one_team_never_deadlock(merchant):
    deal = live_deal(
        merchant, max_quantity=500, tipping_point=500, team_price=5_000, team_size=50, deal_price=9_000
    )
    for round_ in range(ROUNDS):
        _round_at_once(deal, round_)

    deal = Deal.objects.get(id=deal.id)
    kept = Order.objects.filter(deal=deal, state__in=STOCK_STATES)
    assert deal.sold == kept.aggregate(units=Sum("quantity"))["units"]
    assert deal.takers == kept.values("buyer_id").distinct().count()
    assert UserDealQuota.objects.filter(deal=deal, own__gt=0).count() == deal.takers
    for team in Team.objects.filter(deal=deal, state=TeamState.OPEN):
        assert team.members == Order.objects.filter(team=team, state=OrderState.AUTHORIZED).count()
    report = ledger_report()
    assert report.ok, report.problems()
