"""Referral credit: an invite earns credit when the invited friend's first order is paid in time."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from weituan.deals.models import Order, OrderState, Referral
from weituan.deals.services import ledger


def referral_record(*, inviter: Any, invitee: Any) -> Referral | None:
    """Remember who invited `invitee` (first invite wins); nobody refers themselves or a past buyer."""
    if inviter.id == invitee.id:
        return None
    if Order.objects.filter(buyer=invitee, state__in=(OrderState.CAPTURED, OrderState.REFUNDED)).exists():
        return None
    referral, _ = Referral.objects.get_or_create(invitee=invitee, defaults={"inviter": inviter})
    return referral


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
    if not Referral.objects.filter(id=referral.id, credited_at__isnull=True).update(
        credited_at=now, credit=credit, currency=order.currency
    ):
        return False
    ledger.posting_write(
        kind="referral",
        key=f"referral:{referral.id}",
        order=order,
        lines=[
            (ledger.promotions_account(order.currency), -credit),
            (ledger.wallet_account(referral.inviter_id, order.currency), credit),
        ],
    )
    return True
