"""The built-in wallet: top-ups (dev and demo only) and payouts of merchant balances."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from weituan.core.errors import PermissionDenied, ValidationFailed
from weituan.core.money import MINOR_UNITS, Money
from weituan.deals.models import RefundPolicy, Voucher, VoucherState
from weituan.deals.pricing import capture_split
from weituan.deals.services import ledger

TOP_UP_PROFILES = ("dev", "demo", "test")
TOP_UP_MAX = 10_000_000  # minor units per top-up


def wallet_top_up(*, user: Any, amount: int, currency: str = "CNY", key: str | None = None) -> int:
    """Add play money to a wallet; refused outside dev and demo. Returns the new balance."""
    if settings.PROFILE not in TOP_UP_PROFILES:
        raise PermissionDenied("Top-ups are only available in dev and demo mode", code="top_up_disabled")
    if currency not in MINOR_UNITS:
        raise ValidationFailed(f"Unknown currency {currency}", code="invalid_currency")
    if not 0 < amount <= TOP_UP_MAX:
        raise ValidationFailed(
            f"amount must be between 1 and {TOP_UP_MAX}",
            code="invalid_amount",
            currency=currency,
            most=TOP_UP_MAX,
        )
    with transaction.atomic():
        ledger.posting_write(
            kind="top_up",
            key=f"top_up:{user.id}:{key or uuid.uuid4().hex}",
            lines=[
                (ledger.gateway_account("top_up", currency), -amount),
                (ledger.wallet_account(user.id, currency), amount),
            ],
        )
    return ledger.balance_of(ledger.wallet_account(user.id, currency))


# A refund allowed just before its window closed takes its vouchers a moment after (from then on they
# are refunding, held back whatever their window): the window's money is held this much longer.
REFUND_SETTLING = timedelta(hours=1)


@dataclass(frozen=True)
class Payable:
    """A merchant's payable balance, and how much of it buyers may still take back with a refund."""

    balance: int
    held_back: int

    @property
    def available(self) -> int:
        return max(self.balance - self.held_back, 0)


def refundable_share(*, merchant_id: int, currency: str, now: datetime | None = None) -> int:
    """The merchant's share of every voucher a buyer may still have refunded: valid (not redeemed,
    refunded or expired) under a deal that refunds any time, refunds on expiry, or refunds within a
    window that has not closed, and every voucher whose refund is under way (its provider has not
    confirmed it yet). That much of the payable balance is not paid out yet, as Groupon and Pinduoduo
    hold a sale's money until it can no longer come back, so a refund never takes the merchant's
    balance below zero."""
    now = now or timezone.now()
    groups = (
        Voucher.objects.filter(
            deal__merchant_id=merchant_id,
            order__currency=currency,
            state__in=(VoucherState.VALID, VoucherState.REFUNDING),
        )
        .values(
            "state",
            "deal__refund_policy",
            "deal__refund_window_days",
            "deal__platform_fee_bps",
            "order__unit_price",
            "order__captured_at",
            "order__created_at",
        )
        .annotate(vouchers=Count("id"))
    )
    held = 0
    for group in groups:
        if group["state"] == VoucherState.VALID and group["deal__refund_policy"] == RefundPolicy.WINDOW:
            bought = group["order__captured_at"] or group["order__created_at"]
            if now > bought + timedelta(days=group["deal__refund_window_days"]) + REFUND_SETTLING:
                continue  # the window has closed: this money stays with the merchant
        share, _ = capture_split(
            unit_price=group["order__unit_price"], quantity=1, fee_bps=group["deal__platform_fee_bps"]
        )
        held += share * group["vouchers"]
    return held


def merchant_payable(*, merchant: Any, currency: str = "CNY") -> Payable:
    balance = ledger.balance_of(ledger.merchant_account(merchant.id, currency))
    return Payable(balance, refundable_share(merchant_id=merchant.id, currency=currency))


def merchant_payout(*, merchant: Any, currency: str = "CNY") -> int:
    """Pay out to the merchant's bank (recorded against the payout gateway) the part of their payable
    balance no buyer can take back any more; the rest waits for redemptions, expiries and closing
    refund windows. Returns the amount paid."""
    with transaction.atomic():
        account = ledger.merchant_account(merchant.id, currency)
        balance = ledger.balance_locked(account)
        held = refundable_share(merchant_id=merchant.id, currency=currency)
        amount = balance - held
        if amount <= 0:
            waiting = Money(min(held, balance), currency) if held > 0 and balance > 0 else None
            message = "Nothing to pay out"
            if waiting is not None:
                message += f": {waiting} waits until refunds of it are no longer possible"
            raise ValidationFailed(message, code="nothing_to_pay_out", held=str(waiting) if waiting else "")
        ledger.posting_write(
            kind="payout",
            key=f"payout:{merchant.id}:{uuid.uuid4().hex}",
            lines=[(account, -amount), (ledger.gateway_account("payout", currency), amount)],
        )
    return amount
