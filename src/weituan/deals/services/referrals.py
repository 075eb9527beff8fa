"""Referral credit: an invite earns credit when the invited friend's first order is paid in time."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from weituan.accounts.invites import Invitation
from weituan.deals.models import Order, Referral
from weituan.deals.services import ledger


def referral_record(*, inviter_id: int, invitee: Any) -> Referral | None:
    """Remember who invited `invitee` (first invite wins). Only a new customer is referred, as on
    Pinduoduo and Groupon: nobody refers themselves, nor anyone who has ever placed an order (held,
    paid, refunded or let go), so an existing shopper following a friend's link earns that friend
    nothing."""
    if inviter_id == invitee.id:
        return None
    if Order.objects.filter(buyer_id=invitee.id).exists():
        return None
    referral, _ = Referral.objects.get_or_create(invitee_id=invitee.id, defaults={"inviter_id": inviter_id})
    return referral


def referral_for_invitation(invitation: Invitation) -> Referral | None:
    """An invited person signed up, or an existing account logged in, through an invite link (the
    ACCOUNTS_INVITATION_HANDLERS hook). The same rule holds for both: a new customer is referred."""
    return referral_record(inviter_id=invitation.inviter_id, invitee=invitation.invitee)


def referral_credit_for_capture(*, order: Order) -> bool:
    """Credit the inviter of `order`'s buyer if this is their first paid order, within the window and
    under the inviter's cap. Call inside the capture's transaction."""
    credit = settings.DEALS_REFERRAL_CREDIT
    referral = Referral.objects.filter(invitee_id=order.buyer_id, credited_at__isnull=True).first()
    if referral is None or credit <= 0:
        return False
    now = timezone.now()
    if now > referral.invited_at + timedelta(hours=settings.DEALS_REFERRAL_HOURS):
        return False
    if Order.objects.filter(buyer_id=order.buyer_id, captured_at__isnull=False).exclude(id=order.id).exists():
        return False
    credited = Referral.objects.filter(inviter_id=referral.inviter_id, credited_at__isnull=False).count()
    if credited >= settings.DEALS_REFERRAL_CAP:
        return False
    # In the platform's currency for referrals, not the order's: a friend's first order in yen earns
    # the same credit as one in yuan.
    currency = settings.DEALS_REFERRAL_CURRENCY
    if not Referral.objects.filter(id=referral.id, credited_at__isnull=True).update(
        credited_at=now, credit=credit, currency=currency
    ):
        return False
    ledger.posting_write(
        kind="referral",
        key=f"referral:{referral.id}",
        order=order,
        lines=[
            (ledger.promotions_account(currency), -credit),
            (ledger.wallet_account(referral.inviter_id, currency), credit),
        ],
    )
    return True
