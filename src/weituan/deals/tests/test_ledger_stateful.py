"""Any interleaving of buys, team buys, cancels, tips, expiries, refunds, redemptions and payouts keeps the
money right, under each refund policy."""

import contextlib
import itertools
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from weituan.core.errors import ServiceError
from weituan.core.testing import make_user
from weituan.deals.models import Deal, DealState, Order, OrderState, Team, TeamState, VoucherState
from weituan.deals.models.deals import ENDED_STATES
from weituan.deals.models.orders import STOCK_STATES
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services import ledger
from weituan.deals.services.deals import deal_end, deal_tip_check
from weituan.deals.services.orders import order_cancel, order_place
from weituan.deals.services.refunds import order_refund
from weituan.deals.services.teams import team_expire
from weituan.deals.services.vouchers import voucher_redeem, vouchers_expire_due
from weituan.deals.services.wallet import merchant_payout, wallet_top_up
from weituan.deals.tests.conftest import live_deal

_names = itertools.count()


class DealMachine(RuleBasedStateMachine):
    refund_policy = "anytime"

    def __init__(self) -> None:
        super().__init__()
        run = next(_names)
        self.merchant = make_user(f"shop{run}", merchant=True)
        self.buyers = [make_user(f"b{run}x{i}") for i in range(3)]
        for buyer in self.buyers:
            wallet_top_up(user=buyer, amount=30_000)
        self.deal = live_deal(
            self.merchant,
            max_quantity=6,
            tipping_point=3,
            per_user_limit=2,
            gift_limit=1,
            deal_price=4_999,
            team_price=3_333,
            team_size=2,
            refund_policy=self.refund_policy,
            refund_window_days=1,
        )

    def _orders(self, *states: str) -> list[Order]:
        return list(Order.objects.filter(deal=self.deal, state__in=states).order_by("id"))

    @rule(who=st.integers(0, 2), quantity=st.integers(1, 3), gifts=st.integers(0, 1))
    def buy(self, who: int, quantity: int, gifts: int) -> None:
        with contextlib.suppress(ServiceError):
            order_place(
                deal_id=self.deal.id,
                buyer=self.buyers[who],
                quantity=quantity,
                gift_quantity=min(gifts, quantity),
            )

    @rule(who=st.integers(0, 2), join=st.booleans())
    def team_buy(self, who: int, join: bool) -> None:
        open_team = Team.objects.filter(deal=self.deal, state=TeamState.OPEN).first()
        choice: str | int = open_team.id if (join and open_team) else "start"
        with contextlib.suppress(ServiceError):
            order_place(deal_id=self.deal.id, buyer=self.buyers[who], quantity=1, team=choice)

    @rule(pick=st.integers(0, 10))
    def cancel(self, pick: int) -> None:
        held = self._orders(OrderState.AUTHORIZED)
        if held:
            order = held[pick % len(held)]
            order_cancel(order_id=order.id, by=order.buyer)

    @rule()
    def tip(self) -> None:
        deal_tip_check(deal_id=self.deal.id)

    @rule()
    def team_times_out(self) -> None:
        for team in Team.objects.filter(deal=self.deal, state=TeamState.OPEN):
            team_expire(team_id=team.id, force=True)

    @rule()
    def deal_window_ends(self) -> None:
        Deal.objects.filter(id=self.deal.id).update(
            ends_at=timezone.now() - timedelta(seconds=1), starts_at=timezone.now() - timedelta(days=1)
        )
        deal_end(deal_id=self.deal.id)

    @rule(pick=st.integers(0, 10))
    def refund(self, pick: int) -> None:
        paid = self._orders(OrderState.CAPTURED)
        if paid:
            order = paid[pick % len(paid)]
            with contextlib.suppress(ServiceError):
                order_refund(order_id=order.id, by=order.buyer)

    @rule(pick=st.integers(0, 10))
    def redeem(self, pick: int) -> None:
        vouchers = list(self.deal.vouchers.filter(state=VoucherState.VALID).order_by("id"))
        if vouchers:
            voucher_redeem(code=vouchers[pick % len(vouchers)].code, by=self.merchant)

    @rule()
    def vouchers_pass_their_date(self) -> None:
        vouchers_expire_due(now=timezone.now() + timedelta(days=365))

    @rule()
    def refund_window_closes(self) -> None:
        Order.objects.filter(deal=self.deal, state=OrderState.CAPTURED).update(
            captured_at=timezone.now() - timedelta(days=2)
        )

    @rule()
    def payout(self) -> None:
        with contextlib.suppress(ServiceError):
            merchant_payout(merchant=self.merchant)

    @invariant()
    def ledger_sums_to_zero(self) -> None:
        report = ledger_report()
        assert all(total == 0 for total in report.totals.values()), report.totals
        assert report.unbalanced_postings == []
        assert report.held_mismatch == {}

    @invariant()
    def stock_is_consistent(self) -> None:
        deal = Deal.objects.get(id=self.deal.id)
        taken = Order.objects.filter(deal=deal, state__in=STOCK_STATES).aggregate(q=Sum("quantity"))["q"] or 0
        refunded = (
            Order.objects.filter(deal=deal, state=OrderState.REFUNDED).aggregate(q=Sum("quantity"))["q"] or 0
        )
        assert deal.sold <= deal.max_quantity
        assert deal.sold == taken + refunded

    @invariant()
    def merchant_never_owes(self) -> None:
        # A payout leaves what buyers may still take back, so no refund takes the balance below zero.
        assert ledger.balance_of(ledger.merchant_account(self.merchant.id, "CNY")) >= 0

    @invariant()
    def wallets_never_negative(self) -> None:
        for buyer in self.buyers:
            wallet = wallet_of(user=buyer)
            assert wallet.available >= 0 and wallet.held >= 0

    @invariant()
    def ended_deal_has_no_open_hold(self) -> None:
        deal = Deal.objects.get(id=self.deal.id)
        if deal.state in ENDED_STATES:
            assert not self._orders(OrderState.AUTHORIZED, OrderState.PENDING)
        if deal.state == DealState.FAILED:
            assert not self._orders(OrderState.CAPTURED, OrderState.REFUNDED)


class WindowDealMachine(DealMachine):
    refund_policy = "window"


class ExpiryDealMachine(DealMachine):
    refund_policy = "on_expiry"


@pytest.mark.django_db
@pytest.mark.parametrize("machine", [DealMachine, WindowDealMachine, ExpiryDealMachine])
def test_money_invariants_hold_for_any_interleaving(machine):
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
