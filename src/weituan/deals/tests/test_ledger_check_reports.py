"""`weituan ledger check` names a hold left open on a closed deal and a merchant balance below zero, in
its one line and in --json, and fails."""

import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from weituan.deals.models import Deal, DealState, OrderState
from weituan.deals.services import ledger
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def _check(capsys: Any) -> tuple[str, dict[str, Any]]:
    with pytest.raises(CommandError) as failed:
        call_command("ledger", "check")
    with pytest.raises(CommandError):
        call_command("ledger", "check", "--json")
    return str(failed.value), json.loads(capsys.readouterr().out)


def test_a_hold_left_open_on_a_closed_deal_is_named(
    shopper: Any, make_live_deal: Any, fund: Any, capsys: Any
) -> None:
    deal = make_live_deal(tipping_point=5)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert order.state == OrderState.AUTHORIZED
    call_command("ledger", "check")
    capsys.readouterr()
    # The deal failed but its holds were never voided (a crash between the two).
    Deal.objects.filter(id=deal.id).update(state=DealState.FAILED)
    line, report = _check(capsys)
    assert f"1 holds still open on closed deals (orders {order.id})" in line
    assert (report["ok"], report["open_holds_on_ended_deals"]) == (False, [order.id])


def test_a_merchant_balance_below_zero_is_named(merchant: Any, capsys: Any) -> None:
    account = ledger.merchant_account(merchant.id, "CNY")
    ledger.posting_write(
        kind="adjustment",
        key="adjust:1",
        lines=[(account, -950), (ledger.platform_fee_account("CNY"), 950)],
    )
    line, report = _check(capsys)
    assert f"1 merchant balances below zero (first: {account.identity} at -950)" in line
    assert report["merchants_below_zero"] == {account.identity: -950}
