"""Payouts pay a merchant only what no buyer can take back: a refund never leaves the platform owing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from weituan.core.errors import ValidationFailed
from weituan.deals.models import Order, RefundPolicy, Voucher, VoucherState
from weituan.deals.queries import ledger_report
from weituan.deals.services import ledger
from weituan.deals.services.refunds import order_refund
from weituan.deals.services.vouchers import voucher_redeem, vouchers_expire_due
from weituan.deals.services.wallet import merchant_payable, merchant_payout
from weituan.deals.tests.test_vouchers_and_referrals import paid_order

pytestmark = pytest.mark.django_db

SHARE = 9900 - 495  # a 99.00 voucher less the 5% platform fee


def _merchant_balance(merchant) -> int:
    return ledger.balance_of(ledger.merchant_account(merchant.id, "CNY"))


def _refused(merchant) -> str:
    with pytest.raises(ValidationFailed) as refused:
        merchant_payout(merchant=merchant)
    assert refused.value.code == "nothing_to_pay_out"
    return refused.value.message


def test_money_inside_the_refund_window_waits_and_a_refund_never_takes_the_balance_below_zero(
    shopper, merchant, make_live_deal, fund
):
    deal = make_live_deal(tipping_point=1, refund_policy=RefundPolicy.WINDOW, refund_window_days=7)
    order = paid_order(deal, shopper, fund, quantity=2)
    assert merchant_payable(merchant=merchant) == merchant_payable(merchant=merchant)
    payable = merchant_payable(merchant=merchant)
    assert (payable.balance, payable.held_back, payable.available) == (2 * SHARE, 2 * SHARE, 0)
    assert "¥188.10 waits" in _refused(merchant)

    # A redeemed voucher cannot be refunded: its share is paid; the other stays held.
    first, second = order.vouchers.order_by("id")
    voucher_redeem(code=first.code, by=merchant)
    assert merchant_payout(merchant=merchant) == SHARE
    # The buyer refunds the other inside the window: the merchant's balance goes to zero, not below.
    order_refund(order_id=order.id, by=shopper)
    assert Voucher.objects.get(id=second.id).state == VoucherState.REFUNDED
    assert _merchant_balance(merchant) == 0
    assert ledger_report().ok


def test_once_the_window_closes_the_money_is_the_merchants(shopper, merchant, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1, refund_policy=RefundPolicy.WINDOW, refund_window_days=7)
    order = paid_order(deal, shopper, fund)
    assert merchant_payable(merchant=merchant).available == 0
    # Closed a minute ago: still held while a refund allowed at the last moment may be on its way.
    Order.objects.filter(id=order.id).update(captured_at=timezone.now() - timedelta(days=7, minutes=1))
    assert merchant_payable(merchant=merchant).available == 0
    Order.objects.filter(id=order.id).update(captured_at=timezone.now() - timedelta(days=7, minutes=61))
    assert merchant_payable(merchant=merchant).available == SHARE
    assert merchant_payout(merchant=merchant) == SHARE
    assert _merchant_balance(merchant) == 0


@pytest.mark.parametrize("policy", [RefundPolicy.ANYTIME, RefundPolicy.ON_EXPIRY])
def test_refundable_any_time_or_on_expiry_waits_until_redeemed_or_refunded(
    policy, shopper, merchant, make_live_deal, fund
):
    deal = make_live_deal(tipping_point=1, refund_policy=policy, refund_window_days=0)
    order = paid_order(deal, shopper, fund, quantity=2)
    # However long ago it was bought, an unredeemed voucher can still come back.
    Order.objects.filter(id=order.id).update(captured_at=timezone.now() - timedelta(days=365))
    assert merchant_payable(merchant=merchant).available == 0
    first, second = order.vouchers.order_by("id")
    voucher_redeem(code=first.code, by=merchant)
    assert merchant_payout(merchant=merchant) == SHARE
    if policy == RefundPolicy.ON_EXPIRY:
        Voucher.objects.filter(id=second.id).update(expires_at=timezone.now() - timedelta(minutes=1))
        assert vouchers_expire_due() == 1  # refunded automatically
    else:
        order_refund(order_id=order.id, by=shopper)
    assert Voucher.objects.get(id=second.id).state == VoucherState.REFUNDED
    assert _merchant_balance(merchant) == 0
    assert "waits" not in _refused(merchant)


def test_the_payouts_page_shows_what_is_held(shopper, merchant, make_live_deal, fund, client):
    deal = make_live_deal(tipping_point=1)
    paid_order(deal, shopper, fund)
    client.force_login(merchant)
    page = client.get("/merchant/payouts").content.decode()
    assert "¥0.00" in page and "¥94.05" in page
    refused = client.post("/merchant/payouts", follow=True).content.decode()
    assert "暂无可结算金额：¥94.05 仍在退款期内" in refused  # the page's language, with what waits
    assert _merchant_balance(merchant) == SHARE
