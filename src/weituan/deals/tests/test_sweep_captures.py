"""The deal sweep captures every hold a tipped deal owes whose capture its provider did not do, the holds
of a team that filled after the deal tipped included."""

from typing import Any

import pytest

from weituan.core.testing import make_user
from weituan.deals.models import DealState, Order, OrderState, Team, TeamState
from weituan.deals.queries import ledger_report
from weituan.deals.services.deals import deal_tip_check, deals_sweep
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def _state(order: Order) -> str:
    return str(Order.objects.filter(id=order.id).values_list("state", flat=True).get())


def _funded(fund: Any, name: str) -> Any:
    user = make_user(name)
    fund(user)
    return user


def test_a_team_that_filled_after_the_tip_is_captured_by_the_sweep_once_the_provider_is_back(
    provider, make_live_deal, fund: Any
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, team_price=5_000, team_size=2)
    solo = order_place(deal_id=deal.id, buyer=_funded(fund, "solo"), quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    assert _state(solo) == OrderState.CAPTURED
    leader = order_place(
        deal_id=deal.id, buyer=make_user("cardlead"), quantity=1, team="start", gateway="card"
    )
    # The team fills while the card provider is down: the wallet member is paid at once, the leader's
    # card hold is owed its capture, which the check the filling enqueued cannot do.
    fake.outage = 503
    member = order_place(deal_id=deal.id, buyer=_funded(fund, "walletmate"), quantity=1, team=leader.team_id)
    assert Team.objects.get(orders=leader).state == TeamState.FILLED
    assert _state(member) == OrderState.CAPTURED
    deal_tip_check(deal_id=deal.id)
    assert _state(leader) == OrderState.AUTHORIZED
    assert deals_sweep()["settled"] == 1  # still down: asked again, left as it is
    assert _state(leader) == OrderState.AUTHORIZED

    fake.outage = None
    assert deals_sweep()["settled"] == 1
    assert _state(leader) == OrderState.CAPTURED
    assert deals_sweep()["settled"] == 0
    capture = (f"/authorizations/{leader.payment_ref}/capture", f"order:{leader.id}:capture")
    assert [(path, key) for path, key in fake.calls if path.endswith("/capture")] == [capture]
    assert fake.holds[leader.payment_ref]["status"] == "captured"
    assert Order.objects.get(id=leader.id).vouchers.count() == 1
    deal.refresh_from_db()
    assert (deal.state, deal.sold) == (DealState.TIPPED, 3)
    assert ledger_report().ok
