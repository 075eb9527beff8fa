"""Vouchers (券): issued on capture, redeemed once by the deal's merchant, expired or refunded per policy
(the refunds themselves are in `services.refunds`)."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from weituan.core.errors import Conflict, NotFound
from weituan.core.states import advance
from weituan.deals.errors import NotYourDeal
from weituan.deals.integrations import voucher_event_record
from weituan.deals.models import Order, RefundPolicy, Voucher, VoucherState
from weituan.deals.models.orders import VOUCHER_GRAPH
from weituan.deals.services.write_keys import redeem_request, write_key_keep, write_key_of, write_key_voucher

# Crockford's base32 without look-alikes: 16 characters carry 80 random bits.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16


def voucher_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def voucher_code_normalize(raw: str) -> str:
    """Accept codes typed with dashes, spaces, lower case or the look-alikes O/I/L."""
    cleaned = "".join(ch for ch in raw.upper() if ch.isalnum())
    return cleaned.replace("O", "0").replace("I", "1").replace("L", "1")


def voucher_code_display(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def vouchers_issue(*, order: Order) -> list[Voucher]:
    """One voucher per unit; call inside the capture's transaction."""
    expires_at = timezone.now() + timedelta(days=order.deal.voucher_valid_days)
    return Voucher.objects.bulk_create(
        [
            Voucher(
                order=order,
                deal_id=order.deal_id,
                holder_id=order.buyer_id,
                code=voucher_code_new(),
                expires_at=expires_at,
            )
            for _ in range(order.quantity)
        ]
    )


def voucher_redeem(*, code: str, by: Any, client_key: str | None = None) -> Voucher:
    """The deal's merchant redeems a voucher, once. A second try says when and by whom it was redeemed.

    `client_key` (the request's Idempotency-Key) is kept by the redemption itself (`write_keys`): the
    request sent again with it is answered with the redeemed voucher however long after, never refused
    `already_redeemed`.
    """
    normalized = voucher_code_normalize(code)
    kept = write_key_of(sender_id=by.id, key=client_key, request=redeem_request(normalized))
    done = write_key_voucher(kept=kept)
    if done is not None:
        return done
    voucher = Voucher.objects.select_related("deal").filter(code=normalized).first()
    if voucher is None:
        raise NotFound("No voucher has this code", code="voucher_not_found")
    if voucher.deal.merchant_id != by.id:
        raise NotYourDeal("This voucher is for another merchant's deal")
    now = timezone.now()
    with transaction.atomic():
        moved = advance(
            VOUCHER_GRAPH,
            Voucher.objects.filter(id=voucher.id, expires_at__gt=now),
            VoucherState.REDEEMED,
            redeemed_at=now,
            redeemed_by=by,
        )
        if moved:
            write_key_keep(kept=kept, voucher_id=voucher.id)
            voucher_event_record(voucher=voucher)
    voucher = Voucher.objects.select_related("deal", "redeemed_by", "holder").get(id=voucher.id)
    if moved:
        return voucher
    # The same request sent twice at once: the one that waited for the voucher's row finds it redeemed
    # by the other, and answers with it.
    done = write_key_voucher(kept=kept)
    if done is not None:
        return done
    if voucher.state == VoucherState.REDEEMED and voucher.redeemed_at and voucher.redeemed_by:
        when = timezone.localtime(voucher.redeemed_at)
        raise Conflict(
            f"Already redeemed on {when:%Y-%m-%d %H:%M %Z} by @{voucher.redeemed_by.username}",
            code="already_redeemed",
            redeemed_at=voucher.redeemed_at.isoformat(),
            redeemed_by=voucher.redeemed_by.username,
        )
    if voucher.state == VoucherState.REFUNDED:
        raise Conflict("This voucher was refunded", code="voucher_refunded")
    if voucher.state == VoucherState.REFUNDING:
        raise Conflict("This voucher is being refunded", code="voucher_refunded")
    raise Conflict(
        f"This voucher expired on {timezone.localtime(voucher.expires_at):%Y-%m-%d}",
        code="voucher_expired",
        expires_at=voucher.expires_at.isoformat(),
    )


def vouchers_expire_due(*, now: datetime | None = None) -> int:
    """Expire vouchers past their date; under the auto-refund policy they are refunded instead (a refund
    the provider does not confirm now is completed by a later attempt). Returns the vouchers expired or
    refunded."""
    from weituan.deals.services.refunds import vouchers_refund_on_expiry

    now = now or timezone.now()
    count = vouchers_refund_on_expiry(now=now)
    due = Voucher.objects.filter(state=VoucherState.VALID, expires_at__lte=now)
    count += advance(
        VOUCHER_GRAPH, due.exclude(deal__refund_policy=RefundPolicy.ON_EXPIRY), VoucherState.EXPIRED
    )
    return count
