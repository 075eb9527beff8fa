from datetime import timedelta

import pytest
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.errors import DealNotSelling, InsufficientBalance, LimitReached, PriceMismatch, SoldOut
from weituan.deals.models import Deal, DealState, Order, OrderState, Voucher
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services.deals import deal_end, deal_tip_check
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.refunds import order_refund

pytestmark = pytest.mark.django_db


def snapshot(deal):
    from weituan.deals.models import Entry, Posting, UserDealQuota

    deal.refresh_from_db()
    return (
        deal.sold,
        deal.takers,
        deal.state,
        Order.objects.count(),
        Posting.objects.count(),
        Entry.objects.count(),
        list(UserDealQuota.objects.values_list("own", "gifts")),
    )


def test_order_holds_payment_and_tipping_captures(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=2)
    fund(shopper, 50_000)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert order.state == OrderState.AUTHORIZED
    wallet = wallet_of(user=shopper)
    assert (wallet.available, wallet.held) == (40_100, 9_900)
    friend = make_user("bob")
    fund(friend, 50_000)
    second = order_place(deal_id=deal.id, buyer=friend, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    deal.refresh_from_db()
    assert deal.state == DealState.TIPPED
    order.refresh_from_db()
    second.refresh_from_db()
    assert (order.state, second.state) == (OrderState.CAPTURED, OrderState.CAPTURED)
    wallet = wallet_of(user=shopper)
    assert (wallet.available, wallet.held) == (40_100, 0)
    assert Voucher.objects.filter(order=order).count() == 1
    # After tipping, a new order is paid at once.
    third = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert third.state == OrderState.CAPTURED
    report = ledger_report()
    assert report.ok and report.totals == {"CNY": 0}


def test_failed_deal_voids_every_hold(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=5)
    fund(shopper, 50_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    Deal.objects.filter(id=deal.id).update(
        ends_at=timezone.now() - timedelta(seconds=1), starts_at=timezone.now() - timedelta(days=1)
    )
    assert deal_end(deal_id=deal.id) == DealState.FAILED
    assert list(Order.objects.values_list("state", flat=True)) == [OrderState.VOIDED]
    wallet = wallet_of(user=shopper)
    assert (wallet.available, wallet.held) == (50_000, 0)
    deal.refresh_from_db()
    assert deal.sold == 0
    assert ledger_report().ok


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"quantity": 3}, LimitReached),
        ({"quantity": 1, "expected_unit_price": 1}, PriceMismatch),
    ],
)
def test_refusals_change_nothing(shopper, make_live_deal, fund, kwargs, error):
    deal = make_live_deal()
    fund(shopper, 100_000)
    before = snapshot(deal)
    with pytest.raises(error):
        order_place(deal_id=deal.id, buyer=shopper, **kwargs)
    assert snapshot(deal) == before


def test_past_stock_and_closed_deal_and_balance_refused(shopper, make_live_deal, fund):
    deal = make_live_deal(max_quantity=2, per_user_limit=5, tipping_point=2)
    fund(shopper, 100_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    before = snapshot(deal)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert snapshot(deal) == before
    poor = make_user("poor")
    other = make_live_deal()
    before = snapshot(other)
    with pytest.raises(InsufficientBalance):
        order_place(deal_id=other.id, buyer=poor, quantity=1)
    assert snapshot(other) == before
    Deal.objects.filter(id=other.id).update(state=DealState.FAILED)
    with pytest.raises(DealNotSelling):
        order_place(deal_id=other.id, buyer=shopper, quantity=1)
    assert snapshot(other)[3:] == before[3:]


def test_cancel_returns_stock_and_money(shopper, make_live_deal, fund):
    deal = make_live_deal()
    fund(shopper, 30_000)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    order_cancel(order_id=order.id, by=shopper)
    deal.refresh_from_db()
    assert deal.sold == 0
    assert wallet_of(user=shopper).available == 30_000
    again = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    assert again.state == OrderState.AUTHORIZED


def test_refund_within_window(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1)
    fund(shopper, 30_000)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    deal_tip_check(deal_id=deal.id)
    order = order_refund(order_id=order.id, by=shopper)
    assert order.state == OrderState.REFUNDED
    assert wallet_of(user=shopper).available == 30_000
    assert ledger_report().ok


def test_gifts_beyond_the_per_user_limit(shopper, make_live_deal, fund):
    deal = make_live_deal(per_user_limit=1, gift_limit=2)
    fund(shopper, 100_000)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=3, gift_quantity=2)
    assert order.amount == 3 * 9900
    with pytest.raises(LimitReached):
        order_place(deal_id=deal.id, buyer=shopper, quantity=1)
