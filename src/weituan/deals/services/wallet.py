"""The built-in wallet: top-ups (dev and demo only) and payouts of merchant balances."""

import uuid
from typing import Any

from django.conf import settings
from django.db import transaction

from weituan.core.errors import PermissionDenied, ValidationFailed
from weituan.core.money import MINOR_UNITS
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
        raise ValidationFailed(f"amount must be between 1 and {TOP_UP_MAX}", code="invalid_amount")
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


def merchant_payout(*, merchant: Any, currency: str = "CNY") -> int:
    """Pay a merchant's whole payable balance out to their bank (recorded against the payout gateway)."""
    with transaction.atomic():
        account = ledger.merchant_account(merchant.id, currency)
        balance = ledger.balance_locked(account)
        if balance <= 0:
            raise ValidationFailed("Nothing to pay out", code="nothing_to_pay_out")
        ledger.posting_write(
            kind="payout",
            key=f"payout:{merchant.id}:{uuid.uuid4().hex}",
            lines=[(account, -balance), (ledger.gateway_account("payout", currency), balance)],
        )
    return balance
