from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from weituan.core.errors import Conflict
from weituan.core.testing import make_user
from weituan.deals.errors import NotYourDeal, RefundRefused
from weituan.deals.models import Account, Entry, Order, OrderState, Posting, Referral, Voucher, VoucherState
from weituan.deals.queries import wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.referrals import referral_record
from weituan.deals.services.refunds import order_refund
from weituan.deals.services.vouchers import (
    CODE_LENGTH,
    voucher_code_display,
    voucher_redeem,
    vouchers_expire_due,
)

pytestmark = pytest.mark.django_db


def paid_order(deal, buyer, fund, quantity=1):
    fund(buyer)
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=quantity)
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    return order


def test_voucher_codes_are_unguessable_and_redeem_once(shopper, merchant, outsider, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1)
    order = paid_order(deal, shopper, fund, quantity=2)
    codes = list(order.vouchers.values_list("code", flat=True))
    assert len(set(codes)) == 2 and all(len(code) == CODE_LENGTH for code in codes)
    typed = voucher_code_display(codes[0]).lower()  # dashes and lower case are accepted
    voucher = voucher_redeem(code=typed, by=merchant)
    assert (voucher.state, voucher.redeemed_by_id) == (VoucherState.REDEEMED, merchant.id)
    with pytest.raises(Conflict) as again:
        voucher_redeem(code=codes[0], by=merchant)
    assert again.value.code == "already_redeemed"
    assert again.value.details["redeemed_by"] == merchant.username
    # The time says its zone (the site's), so an API client far away reads it right.
    when = timezone.localtime(voucher.redeemed_at)
    assert str(again.value) == f"Already redeemed on {when:%Y-%m-%d %H:%M} CST by @{merchant.username}"
    rival = make_user("rival", merchant=True)
    with pytest.raises(NotYourDeal):
        voucher_redeem(code=codes[1], by=rival)
    assert Voucher.objects.get(code=codes[1]).state == VoucherState.VALID


def test_refund_refused_after_redemption_and_outside_window(shopper, merchant, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1, per_user_limit=1)
    order = paid_order(deal, shopper, fund)
    voucher_redeem(code=order.vouchers.get().code, by=merchant)
    postings = Posting.objects.count()
    with pytest.raises(RefundRefused):
        order_refund(order_id=order.id, by=shopper)
    other = make_live_deal(tipping_point=1, refund_window_days=3)
    late = paid_order(other, make_user("late_buyer"), fund)
    Order.objects.filter(id=late.id).update(captured_at=timezone.now() - timedelta(days=4))
    with pytest.raises(RefundRefused):
        order_refund(order_id=late.id, by=late.buyer)
    assert Posting.objects.count() == postings + 3  # the late buyer's top-up, hold and capture only


def test_auto_refund_on_expiry(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1, refund_policy="on_expiry", voucher_valid_days=30)
    order = paid_order(deal, shopper, fund)
    with pytest.raises(RefundRefused):
        order_refund(order_id=order.id, by=shopper)
    assert vouchers_expire_due(now=timezone.now() + timedelta(days=31)) == 1
    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    assert wallet_of(user=shopper).available == 100_000


def test_plain_expiry_keeps_the_money(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1, voucher_valid_days=30)
    order = paid_order(deal, shopper, fund)
    vouchers_expire_due(now=timezone.now() + timedelta(days=31))
    assert order.vouchers.get().state == VoucherState.EXPIRED
    assert wallet_of(user=shopper).available == 100_000 - 9_900


@override_settings(DEALS_REFERRAL_CREDIT=300, DEALS_REFERRAL_CAP=1)
def test_referral_credit_once_and_capped(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1, max_quantity=10)
    friend, second = make_user("friend"), make_user("second")
    referral_record(inviter_id=shopper.id, invitee=friend)
    referral_record(inviter_id=shopper.id, invitee=second)
    paid_order(deal, friend, fund)
    assert wallet_of(user=shopper).available == 300
    paid_order(deal, friend, fund)  # not the first order any more
    paid_order(deal, second, fund)  # over the cap of 1
    assert wallet_of(user=shopper).available == 300
    assert Referral.objects.filter(credited_at__isnull=False).count() == 1


@override_settings(DEALS_REFERRAL_CREDIT=500, DEALS_REFERRAL_CURRENCY="CNY")
def test_referral_credit_is_in_the_referral_currency_whatever_the_order_s(shopper, make_live_deal, fund):
    """A friend's first order in yen earns the inviter ¥5.00 in yuan, not 500 yen: the credit is the
    platform's promotion, in one currency."""
    deal = make_live_deal(tipping_point=1, currency="JPY", list_price=2000, deal_price=990)
    friend = make_user("friend")
    referral_record(inviter_id=shopper.id, invitee=friend)
    fund(friend, 100_000, "JPY")
    order = order_place(deal_id=deal.id, buyer=friend, quantity=1)
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    assert wallet_of(user=shopper, currency="CNY").available == 500
    assert wallet_of(user=shopper, currency="JPY").available == 0
    referral = Referral.objects.get(invitee_id=friend.id)
    assert (referral.credit, referral.currency) == (500, "CNY")
    call_command("ledger", "check")  # each currency still sums to zero


def test_referral_window_passed(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=1)
    friend = make_user("friend")
    referral = referral_record(inviter_id=shopper.id, invitee=friend)
    assert referral is not None
    Referral.objects.filter(id=referral.id).update(invited_at=timezone.now() - timedelta(hours=73))
    paid_order(deal, friend, fund)
    assert wallet_of(user=shopper).available == 0


def test_ledger_check_command(shopper, make_live_deal, fund, capsys):
    deal = make_live_deal(tipping_point=1)
    paid_order(deal, shopper, fund)
    call_command("ledger", "check")
    assert capsys.readouterr().out.startswith("ledger ok: 3 postings, sums CNY 0")
    posting = Posting.objects.create(kind="manual", key="broken")
    Entry.objects.create(
        posting=posting, account=Account.objects.get(identity__startswith="wallet:"), amount=7
    )
    with pytest.raises(CommandError) as broken:
        call_command("ledger", "check")
    assert "the CNY ledger sums to 7, not 0" in str(broken.value)
    assert "\n" not in str(broken.value)
