"""Refunds: what a buyer asks for under the deal's refund policy, and what expiry refunds on its own.

A refund (`Refund`) returns some unredeemed vouchers of one order as one refund at the order's gateway,
asked for under the refund's own idempotency key:

1. requested: one transaction writes the row and moves its vouchers valid -> refunding, so that none
   of them can be redeemed any more and no other refund takes them;
2. the gateway is asked for the amount (a hosted provider over HTTP, outside any transaction); an
   attempt first claims the refund by conditional UPDATE, so two workers never ask at once;
3. completed: one transaction moves the vouchers refunding -> refunded, writes one ledger posting each
   (a voucher's share of the capture, reversed) and refunds the order once none of its vouchers is left.

A provider that cannot be reached, fails or does not answer in time leaves the refund requested and
its next attempt scheduled (`retry_at`, `refund_complete_task`, and the deal sweep's
`refunds_retry_due`); asking again under the same key is safe, since the provider refunds a key once,
and the ledger's posting keys make the completion move money once. A provider that refuses declines
the refund: its vouchers are as they would be without it (valid until their date, expired after).
"""

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from weituan.core.errors import DATABASE_OUTAGES, STORE_OUTAGES, lost_connections_closed
from weituan.core.states import advance
from weituan.deals.errors import (
    GatewayUnavailable,
    PaymentDeclined,
    RefundDeclined,
    RefundInProgress,
    RefundPending,
    RefundRefused,
)
from weituan.deals.integrations import order_event_record
from weituan.deals.models import (
    ORDER_GRAPH,
    REFUND_GRAPH,
    VOUCHER_GRAPH,
    Order,
    OrderState,
    Refund,
    RefundPolicy,
    RefundReason,
    RefundState,
    Voucher,
    VoucherState,
)
from weituan.deals.pricing import capture_split
from weituan.deals.services import ledger
from weituan.deals.services.gateways import gateway_get
from weituan.deals.services.holds import order_for_buyer

logger = logging.getLogger(__name__)

# An attempt holds its refund this long (well past a provider call's timeout), so that no other attempt
# asks the provider meanwhile; after a failed attempt the next waits 1, 2, 4... minutes, at most an hour.
ATTEMPT_LEASE = timedelta(minutes=2)
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
# A buyer's request that finds another attempt asking the provider for the same refund waits this long
# (seconds) for its outcome before answering 409 `refund_in_progress`: a double-clicked button, or a
# second device, then reads the refunded order as the first did.
IN_PROGRESS_WAIT = 3.0
IN_PROGRESS_POLL = 0.05


def refund_refusal(*, order: Order) -> RefundRefused | None:
    """Why the buyer may not have this order refunded now, or None when they may. The refusal's `reason`
    says which rule refused it (`not_paid`, `on_expiry`, `window_closed`, `nothing_to_refund`), so a page
    can say it in its own words. An order read with `has_valid_vouchers` (see `orders_of_buyer`) is
    judged without a query."""
    deal = order.deal
    if order.state != OrderState.CAPTURED:
        return RefundRefused(
            f"This order is {order.state}; only a paid order can be refunded", reason="not_paid"
        )
    if deal.refund_policy == RefundPolicy.ON_EXPIRY:
        return RefundRefused(
            "This deal refunds unredeemed vouchers automatically when they expire", reason="on_expiry"
        )
    if deal.refund_policy == RefundPolicy.WINDOW:
        if not deal.refund_window_days:  # a window of no days: the deal is sold without refunds
            return RefundRefused("This deal takes no refunds", reason="window_closed", refund_window_days=0)
        limit = (order.captured_at or order.created_at) + timedelta(days=deal.refund_window_days)
        if timezone.now() > limit:
            return RefundRefused(
                f"The {deal.refund_window_days}-day refund window has closed",
                reason="window_closed",
                refund_window_days=deal.refund_window_days,
            )
    valid = getattr(order, "has_valid_vouchers", None)
    if valid is None:
        valid = order.vouchers.filter(state=VoucherState.VALID).exists()
    if not valid:
        return RefundRefused(
            "Every voucher of this order has been used or has expired", reason="nothing_to_refund"
        )
    return None


def order_refund(*, order_id: int, by: Any, client_key: str | None = None) -> Order:
    """Refund every unredeemed voucher of the buyer's order, if the deal's policy allows it now.

    A refund of the order already asked for and not confirmed yet is asked again first (whatever the
    policy says now: it was allowed when it was asked for); one that another request is asking the
    provider for now is waited for, at most `IN_PROGRESS_WAIT`. Raises `RefundPending` when the provider
    could not confirm the refund (it is completed later on its own), `RefundInProgress` when another
    request's attempt is still under way after that wait, `RefundDeclined` when the provider refused.

    `client_key` (the request's Idempotency-Key) is kept on the refund this call writes: the same
    request sent again (`by` the same user, under the same key) after its refund completed is answered
    with the order as it now stands, not refused as an order with nothing left to refund. A refund the
    provider declined is no answer to keep: a retry under its key asks for the refund anew.
    """
    order = order_for_buyer(order_id=order_id, user=by)
    if _pending_finish(order):
        return order
    if client_key and (
        order.refunds.filter(requested_by_id=by.id, client_key=client_key)
        .exclude(state=RefundState.DECLINED)
        .exists()
    ):
        return order
    refusal = refund_refusal(order=order)
    if refusal is not None:
        raise refusal
    valid = order.vouchers.filter(state=VoucherState.VALID).values_list("id", flat=True)
    refund = refund_request(
        order=order,
        voucher_ids=list(valid),
        reason=RefundReason.BUYER,
        requested_by=by,
        client_key=client_key or None,
    )
    if refund is None:  # redeemed, or taken by another request's refund, meanwhile
        if _pending_finish(order):
            return order
        raise RefundRefused(
            "Every voucher of this order has been used or has expired", reason="nothing_to_refund"
        )
    refund_complete(refund_id=refund.id)
    order.refresh_from_db()
    return order


def _pending_finish(order: Order) -> bool:
    """Complete the order's refunds asked for and not confirmed yet (or wait for the attempt of another
    request under way on one); True when there were some and the order has no valid voucher left, so
    they are the answer to a buyer asking for its refund. Raises as `refund_complete` does."""
    pending = list(
        order.refunds.filter(state=RefundState.REQUESTED).order_by("id").values_list("id", flat=True)
    )
    for refund_id in pending:
        try:
            refund_complete(refund_id=refund_id)
        except RefundInProgress:
            _attempt_await(refund_id)
    order.refresh_from_db()
    return bool(pending) and not order.vouchers.filter(state=VoucherState.VALID).exists()


def refund_request(
    *,
    order: Order,
    voucher_ids: list[int],
    reason: str,
    now: datetime | None = None,
    requested_by: Any = None,
    client_key: str | None = None,
) -> Refund | None:
    """Write the refund of those of `voucher_ids` (vouchers of `order`) that are still valid, taking them
    out of use; None when none of them is. The gateway is asked by `refund_complete`. `requested_by`
    and `client_key`: who asked, under which Idempotency-Key (see `order_refund`)."""
    with transaction.atomic():
        # The merchant's payable account is locked first, as a payout locks it: a payout sees each voucher
        # either valid or refunding (both held back from it), or refunded (out of the balance).
        ledger.balance_locked(ledger.merchant_account(order.deal.merchant_id, order.currency))
        ids = list(
            Voucher.objects.select_for_update()
            .filter(order=order, id__in=voucher_ids, state=VoucherState.VALID)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if not ids:
            return None
        refund = Refund.objects.create(
            order=order,
            amount=order.unit_price * len(ids),
            currency=order.currency,
            reason=reason,
            retry_at=now or timezone.now(),
            requested_by=requested_by,
            client_key=client_key,
        )
        advance(VOUCHER_GRAPH, Voucher.objects.filter(id__in=ids), VoucherState.REFUNDING, refund=refund)
    return refund


def refund_key(refund: Refund) -> str:
    """The idempotency key of a refund at its gateway: every attempt of one refund sends the same."""
    return f"order:{refund.order_id}:refund:{refund.id}"


def refund_complete(*, refund_id: int, now: datetime | None = None) -> bool:
    """Ask the gateway for a requested refund whose attempt is due (`retry_at` by `now`) and record the
    outcome; True when this call completed it, False when it was completed or declined already.

    Raises `RefundPending` when the provider could not be reached, failed or did not answer in time (the
    next attempt is scheduled), or when the next attempt is not due yet (one under way holds it);
    `RefundDeclined` when the provider refused.
    """
    now = now or timezone.now()
    claimed = Refund.objects.filter(id=refund_id, state=RefundState.REQUESTED, retry_at__lte=now).update(
        retry_at=now + ATTEMPT_LEASE, attempts=F("attempts") + 1, attempt_started_at=now
    )
    if not claimed:
        _raise_if_requested(refund_id, now=now)
        return False
    try:
        return _attempt(refund_id, now=now)
    except STORE_OUTAGES:
        _claim_give_up(refund_id, claimed_at=now)
        raise


def _claim_give_up(refund_id: int, *, claimed_at: datetime) -> None:
    """The attempt claimed at `claimed_at` met a store outage (its database connection ended, say) before
    recording an outcome: the refund is due again at once, so that the buyer's retry, or the sweep,
    asks again now (under the same key, which the provider refunds once, and the completion's posting
    keys move money once) rather than being told for `ATTEMPT_LEASE` that an attempt is under way. On
    a fresh connection; if the database cannot be reached at all, the lease runs out on its own."""
    lost_connections_closed()
    try:
        Refund.objects.filter(
            id=refund_id, state=RefundState.REQUESTED, attempt_started_at=claimed_at
        ).update(retry_at=claimed_at, attempt_started_at=None)
    except DATABASE_OUTAGES as exc:
        logger.warning("refund %s: its attempt's claim left to run out: %s", refund_id, exc)


def _attempt(refund_id: int, *, now: datetime) -> bool:
    """Ask the gateway for a refund this call has claimed, and record the outcome."""
    refund = Refund.objects.select_related("order__deal").get(id=refund_id)
    order = refund.order
    payment = gateway_get(order.gateway)
    if not payment.local:
        try:
            payment.refund(
                ref=order.payment_ref, amount=refund.amount, currency=refund.currency, key=refund_key(refund)
            )
        except GatewayUnavailable as exc:
            _attempt_failed(refund, exc.message, now=now)
            raise RefundPending(
                f"{exc.message}; the refund is recorded and will be completed automatically",
                order_id=order.id,
            ) from exc
        except PaymentDeclined as exc:
            _declined(refund, exc.message)
            raise RefundDeclined(
                f"The payment provider refused the refund: {exc.message}",
                order_id=order.id,
                provider_message=exc.message,
            ) from exc
    return _completed(refund)


def _raise_if_requested(refund_id: int, *, now: datetime) -> None:
    """Why a refund that could not be claimed is not completed by this call: an attempt under way
    (`RefundInProgress`) or the next attempt not due yet (`RefundPending`). Nothing when it has ended."""
    row = (
        Refund.objects.filter(id=refund_id, state=RefundState.REQUESTED)
        .values_list("attempt_started_at")
        .first()
    )
    if row is None:
        return
    if row[0] is not None and row[0] > now - ATTEMPT_LEASE:
        raise RefundInProgress(
            "This refund is being asked of the payment provider now; read the order again in a moment"
        )
    raise RefundPending("This refund is being completed; it needs nothing more from you")


def _attempt_await(refund_id: int) -> None:
    """Wait, at most `IN_PROGRESS_WAIT` seconds, for the attempt under way on a refund to end; raises
    `RefundInProgress` if it has not by then, `RefundPending` if it failed (the next one is scheduled)."""
    deadline = time.monotonic() + IN_PROGRESS_WAIT
    while True:
        time.sleep(IN_PROGRESS_POLL)
        try:
            _raise_if_requested(refund_id, now=timezone.now())
        except RefundInProgress:
            if time.monotonic() >= deadline:
                raise
        else:
            return


def _attempt_failed(refund: Refund, error: str, *, now: datetime) -> None:
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    retry_at = now + min(RETRY_FIRST * 2 ** min(refund.attempts - 1, 10), RETRY_MAX)
    if Refund.objects.filter(id=refund.id, state=RefundState.REQUESTED).update(
        retry_at=retry_at, last_error=error[:200], attempt_started_at=None
    ):
        schedule_at(tasks.refund_complete_task, retry_at, refund.id)
    logger.warning(
        "refund %s of order %s not confirmed (attempt %s): %s",
        refund.id,
        refund.order_id,
        refund.attempts,
        error,
    )


def _declined(refund: Refund, error: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        if not advance(
            REFUND_GRAPH, Refund.objects.filter(id=refund.id), RefundState.DECLINED, last_error=error[:200]
        ):
            return
        taken = Voucher.objects.filter(refund=refund, state=VoucherState.REFUNDING)
        advance(VOUCHER_GRAPH, taken.filter(expires_at__gt=now), VoucherState.VALID)
        advance(VOUCHER_GRAPH, taken, VoucherState.EXPIRED)
    logger.warning("refund %s of order %s declined: %s", refund.id, refund.order_id, error)


def _completed(refund: Refund) -> bool:
    order, deal = refund.order, refund.order.deal
    payment = gateway_get(order.gateway)
    merchant_share, fee = capture_split(
        unit_price=order.unit_price, quantity=1, fee_bps=deal.platform_fee_bps
    )
    with transaction.atomic():
        merchant = ledger.merchant_account(deal.merchant_id, order.currency)
        ledger.balance_locked(merchant)  # as in `refund_request`
        if not advance(REFUND_GRAPH, Refund.objects.filter(id=refund.id), RefundState.COMPLETED):
            return False
        vouchers = list(
            Voucher.objects.filter(refund=refund, state=VoucherState.REFUNDING)
            .order_by("id")
            .values_list("id", flat=True)
        )
        advance(VOUCHER_GRAPH, Voucher.objects.filter(id__in=vouchers), VoucherState.REFUNDED)
        funding = payment.funding_account(buyer_id=order.buyer_id, currency=order.currency)
        fee_account = ledger.platform_fee_account(order.currency)
        for voucher_id in vouchers:
            ledger.posting_write(
                kind="refund",
                key=f"voucher:{voucher_id}:refund",
                order=order,
                lines=[(merchant, -merchant_share), (fee_account, -fee), (funding, order.unit_price)],
            )
            order_event_record(order=order, event="order_refunded", amount=-order.unit_price)
        if not order.vouchers.exclude(state=VoucherState.REFUNDED).exists():
            advance(
                ORDER_GRAPH,
                Order.objects.filter(id=order.id),
                OrderState.REFUNDED,
                refunded_at=timezone.now(),
            )
    return True


def refund_attempt(*, refund_id: int, now: datetime | None = None) -> bool:
    """`refund_complete` for the sweep and the task: a refund not confirmed or declined is logged (and, if
    still requested, attempted again later), not raised."""
    try:
        return refund_complete(refund_id=refund_id, now=now)
    except (RefundPending, RefundDeclined):
        return False


def refunds_retry_due(*, now: datetime | None = None) -> int:
    """Ask again for every requested refund whose next attempt is due; returns how many completed."""
    now = now or timezone.now()
    due = Refund.objects.filter(state=RefundState.REQUESTED, retry_at__lte=now).order_by("id")
    return sum(refund_attempt(refund_id=refund_id, now=now) for refund_id in due.values_list("id", flat=True))


def vouchers_refund_on_expiry(*, now: datetime) -> int:
    """Refund the unredeemed vouchers past their date under deals that refund on expiry, one refund per
    order; returns the vouchers whose refund completed."""
    due = Voucher.objects.filter(
        state=VoucherState.VALID, expires_at__lte=now, deal__refund_policy=RefundPolicy.ON_EXPIRY
    ).order_by("order_id", "id")
    per_order: dict[int, list[int]] = defaultdict(list)
    for voucher_id, order_id in due.values_list("id", "order_id"):
        per_order[order_id].append(voucher_id)
    refunded = 0
    for order in Order.objects.select_related("deal").filter(id__in=per_order).order_by("id"):
        refund = refund_request(
            order=order, voucher_ids=per_order[order.id], reason=RefundReason.EXPIRY, now=now
        )
        if refund is not None and refund_attempt(refund_id=refund.id, now=now):
            refunded += refund.amount // order.unit_price
    return refunded
