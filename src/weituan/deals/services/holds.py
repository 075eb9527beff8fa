"""The payment hold of a placed order through the rest of its life: captured when its deal tips,
released (voided) when it fails, a team expires, the buyer cancels or the card provider refuses the
capture, and expired when a reservation is never paid.

Each step moves the order's state by conditional UPDATE and writes its ledger posting (under a unique
key) in the same transaction, so a step that runs twice, or again after a crash, moves money once. A
card provider is asked outside any transaction, under the same idempotency key every time it is asked.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from weituan.core.errors import NotFound
from weituan.core.states import advance
from weituan.deals.errors import GatewayUnavailable, NotCancellable, PaymentDeclined
from weituan.deals.integrations import order_event_record
from weituan.deals.models import ORDER_GRAPH, Order, OrderEndReason, OrderState
from weituan.deals.models.deals import TIPPED_STATES
from weituan.deals.models.orders import COUNTED_TEAM, HELD_STATES
from weituan.deals.pricing import capture_split
from weituan.deals.services import ledger
from weituan.deals.services.gateways import PaymentGateway, gateway_get
from weituan.deals.services.locks import deal_lock_for_release, order_team_lock
from weituan.deals.services.shares import ShareRef
from weituan.deals.services.stock import stock_return
from weituan.deals.services.write_keys import (
    KeyedRequest,
    cancel_request,
    write_key_keep,
    write_key_of,
    write_key_order,
)

logger = logging.getLogger(__name__)


def order_key(order: Order, step: str) -> str:
    return f"order:{order.id}:{step}"


def order_emit(order: Order, event: str, *, share: ShareRef | None = None) -> None:
    """Hand the business event to tracking's outbox in the current transaction."""
    order_event_record(order=order, event=event, share=share)


def order_capture(*, order_id: int) -> bool:
    """Capture one authorized hold; returns False if it was not authorized (already captured, voiding or
    voided...).

    A hosted provider that cannot be reached (`GatewayUnavailable`) leaves the order held, and its
    capture is asked again later under the same key. One that refuses the capture for good (any other
    `PaymentDeclined`) fails the order (`_order_fail`: released, its hold voided at the provider, the
    buyer told), then the refusal is raised."""
    from weituan.deals.services.referrals import referral_credit_for_capture
    from weituan.deals.services.vouchers import vouchers_issue

    order = Order.objects.select_related("deal").get(id=order_id)
    if order.state != OrderState.AUTHORIZED:
        return False
    payment = gateway_get(order.gateway)
    if not payment.local:
        try:
            payment.capture(
                ref=order.payment_ref,
                amount=order.amount,
                currency=order.currency,
                key=order_key(order, "capture"),
            )
        except GatewayUnavailable:
            raise
        except PaymentDeclined as exc:
            _order_fail(order, payment=payment, declined=exc)
            raise
    deal = order.deal
    merchant_share, fee = capture_split(
        unit_price=order.unit_price, quantity=order.quantity, fee_bps=deal.platform_fee_bps
    )
    with transaction.atomic():
        now = timezone.now()
        moved = advance(
            ORDER_GRAPH,
            Order.objects.filter(id=order.id),
            OrderState.CAPTURED,
            captured_at=now,
        )
        if not moved:
            return False
        ledger.posting_write(
            kind="capture",
            key=order_key(order, "capture"),
            order=order,
            lines=[
                (ledger.held_account(order.buyer_id, order.currency), -order.amount),
                (ledger.merchant_account(deal.merchant_id, order.currency), merchant_share),
                (ledger.platform_fee_account(order.currency), fee),
            ],
        )
        order.state, order.captured_at = OrderState.CAPTURED, now
        vouchers_issue(order=order)
        referral_credit_for_capture(order=order)
        order_emit(order, "order_paid")
    return True


def order_hold_step(step: Callable[..., bool], *, order_id: int, **also: Any) -> bool:
    """Run `step` (`order_capture` or `order_void`, given `also`: a void's reason) on one order of a
    batch: a deal's settlement, a team's expiry. A gateway that cannot be reached leaves that order held
    (a void: voiding), for the deal sweep to find and try again (with the same idempotency key); a
    capture it refuses for good has failed the order (`order_capture`). Either way the batch goes on
    with the others."""
    try:
        return step(order_id=order_id, **also)
    except PaymentDeclined as exc:
        logger.warning("order %s: %s not done: %s", order_id, step.__name__, exc.message)
        return False


def _order_fail(order: Order, *, payment: PaymentGateway, declined: PaymentDeclined) -> None:
    """The provider refused to capture the order's hold for good (the card was declined, the hold has
    lapsed...): the order fails, as a deal's buyer whose payment does not go through does. In one
    transaction it becomes `voiding` under its deal's and team's locks, gives back its unit, its quota
    and its place among the deal's buyers, and records `order_failed` for its buyer; then the provider
    is asked to release the hold (`order_void`, under the order's void key) and the void moves its money
    out of held. A provider that cannot be reached for the void leaves it voiding, for the deal sweep
    to finish; no voucher is ever issued. The order ends `payment_declined`."""
    declined_reason = OrderEndReason.PAYMENT_DECLINED
    if _hold_release(
        order,
        payment=payment,
        to=OrderState.VOIDING,
        reason=declined_reason,
        owed_too=True,
        event="order_failed",
    ):
        logger.warning("order %s failed: the provider refused its capture: %s", order.id, declined.message)
    try:
        order_void(order_id=order.id, reason=declined_reason)
    except GatewayUnavailable as exc:
        logger.warning(
            "order %s: the provider did not release the hold yet; the sweep will: %s", order.id, exc
        )


def order_void(
    *, order_id: int, reason: str, released_by_provider: bool = False, kept: KeyedRequest | None = None
) -> bool:
    """Release one hold and give its stock back; pending reservations simply expire. Returns whether
    this call released it. `reason` (an `OrderEndReason`) is why the order ends, recorded with the move
    that takes it out of its deal's buyers (a voiding order keeps the one it already has).

    A hold its deal owes its capture (`_capture_owed`: the deal has tipped, on this buyer among
    others) is not released. That is decided under the deal's lock (`deal_lock_for_release`), in the
    transaction that takes the order out of its deal's buyers, so a tip check never tips on a buyer
    whose hold is being released:

    - a wallet hold is released in that one transaction (voided, its money back in the wallet);
    - a hosted provider's hold is marked `voiding` in it (no longer a buyer, its unit given back, no
      longer capturable, its money still held), then the provider is asked outside any transaction,
      then the void is recorded. A provider that cannot be reached, fails or does not answer in time
      (`GatewayUnavailable`) leaves the order voiding, and the deal sweep asks again under the same
      idempotency key (as it does after a crash in between); calling this again does the same. A
      provider that refuses the void for good (any other `PaymentDeclined`: it knows no such hold, or
      the hold is no longer held) has nothing left to release: the void is recorded all the same, since
      a voiding order is never captured and an authorization the provider keeps lapses on its own,
      rather than the money staying held in the ledger for ever.

    `released_by_provider`: the provider's webhook says it ended the hold itself, which is recorded
    whatever the deal owes (and whatever the provider answers when it is asked to void it too).

    `kept`: the Idempotency-Key of the buyer's cancel, kept in the transaction that takes the order out
    of its deal's buyers (`write_keys`).
    """
    order = Order.objects.get(id=order_id)
    if order.state == OrderState.PENDING:
        return order_reservation_expire(order_id=order.id, force=True, reason=reason, kept=kept)
    if order.state not in HELD_STATES:
        return False
    payment = gateway_get(order.gateway)
    if order.state == OrderState.AUTHORIZED and payment.local:
        return _hold_release(order, payment=payment, to=OrderState.VOIDED, reason=reason, kept=kept)
    if order.state == OrderState.AUTHORIZED:
        _hold_release(
            order,
            payment=payment,
            to=OrderState.VOIDING,
            reason=reason,
            owed_too=released_by_provider,
            kept=kept,
        )
        if Order.objects.filter(id=order.id).values_list("state", flat=True).get() != OrderState.VOIDING:
            return False  # owed its capture, or released meanwhile
    try:
        payment.void(ref=order.payment_ref, key=order_key(order, "void"))
    except GatewayUnavailable as exc:
        if not released_by_provider:
            raise
        # The provider said it ended the hold: nothing is left to release, whatever it answers now.
        logger.info(
            "order %s: the provider's hold, ended by the provider, not voided again: %s", order.id, exc
        )
    except PaymentDeclined as exc:
        logger.warning(
            "order %s: the provider refused to release its hold (%s); recorded as released",
            order.id,
            exc.message,
        )
    return _void_record(order, payment=payment)


def _hold_release(
    order: Order,
    *,
    payment: PaymentGateway,
    to: str,
    reason: str,
    owed_too: bool = False,
    event: str | None = None,
    kept: KeyedRequest | None = None,
) -> bool:
    """Take a held order out of its deal's buyers, in one transaction under the deal's and its team's
    locks: move it to `to` (voided, with its void posting; or voiding) with its end `reason` and give
    back its unit, its quota and its team seat, recording the order's `event` if one is given and
    keeping the request's key if `kept`. Returns whether it moved; a hold the deal owes its capture does
    not, unless `owed_too`."""
    with transaction.atomic():
        state = deal_lock_for_release(deal_id=order.deal_id)
        order_team_lock(order_id=order.id)
        if not owed_too and _capture_owed(order.id, deal_state=state):
            return False
        held = Order.objects.filter(id=order.id, state=OrderState.AUTHORIZED)
        if not advance(ORDER_GRAPH, held, to, end_reason=reason):
            return False
        if to == OrderState.VOIDED:
            order_void_posting(order, payment=payment)
        # Read again under the team's lock: a merge may have moved the order to another team meanwhile.
        leaving = Order.objects.get(id=order.id)
        _return_stock(leaving)
        write_key_keep(kept=kept, order_id=order.id)
        if event is not None:  # no money changed hands: the event carries no revenue
            order_event_record(order=leaving, event=event, amount=0)
    return True


def _void_record(order: Order, *, payment: PaymentGateway) -> bool:
    """Record a void the provider did: voiding -> voided and the void posting, in one transaction."""
    with transaction.atomic():
        moved = advance(
            ORDER_GRAPH, Order.objects.filter(id=order.id, state=OrderState.VOIDING), OrderState.VOIDED
        )
        if moved:
            order_void_posting(order, payment=payment)
    return bool(moved)


def order_void_posting(order: Order, *, payment: PaymentGateway) -> None:
    """The void's ledger posting: the held money back to where it came from (the wallet, or the card's
    funding account), under the order's void key."""
    ledger.posting_write(
        kind="void",
        key=order_key(order, "void"),
        order=order,
        lines=[
            (ledger.held_account(order.buyer_id, order.currency), -order.amount),
            (payment.funding_account(buyer_id=order.buyer_id, currency=order.currency), order.amount),
        ],
    )


def _capture_owed(order_id: int, *, deal_state: str | None) -> bool:
    """Whether a held order is owed its capture by its deal in `deal_state`: the deal has tipped, and
    the order counts towards its buyers (it is outside a team still waiting to fill)."""
    return deal_state in TIPPED_STATES and Order.objects.filter(id=order_id).filter(COUNTED_TEAM).exists()


def order_reservation_expire(
    *,
    order_id: int,
    force: bool = False,
    now: datetime | None = None,
    reason: str = OrderEndReason.RESERVATION_EXPIRED,
    kept: KeyedRequest | None = None,
) -> bool:
    """Return the stock of a reservation whose payment never completed: due at `now` (the present by
    default; the deal sweep passes the time it runs for), or `force`d for another `reason` (the buyer
    cancelled it, its deal failed, its provider refused the hold...); `kept` as `order_void` takes it."""
    queryset = Order.objects.filter(id=order_id)
    if not force:
        queryset = queryset.filter(reserve_expires_at__lte=now or timezone.now())
    with transaction.atomic():
        order_team_lock(order_id=order_id)
        if not advance(ORDER_GRAPH, queryset, OrderState.EXPIRED, end_reason=reason):
            return False
        _return_stock(Order.objects.get(id=order_id))
        write_key_keep(kept=kept, order_id=order_id)
    return True


def _return_stock(order: Order) -> None:
    """Give back the unit, the quota and the team seat of an order leaving its deal (call holding the
    team's lock, `order_team_lock`): the seat first, the deal's `sold` last, as a join moves them."""
    from weituan.deals.services.teams import team_leave

    if order.team_id:
        team_leave(team_id=order.team_id)
    stock_return(
        deal_id=order.deal_id,
        user_id=order.buyer_id,
        own=order.quantity - order.gift_quantity,
        gifts=order.gift_quantity,
    )


def order_cancel(*, order_id: int, by: Any, client_key: str | None = None) -> Order:
    """The buyer withdraws an order whose payment is still only held, before its deal tips (or while
    the order waits in a team that has not filled). Once the deal has tipped on its buyers, their held
    orders are theirs to pay: refused with `not_cancellable`, and once paid they may be refunded under
    the deal's refund policy.

    A hold of a hosted provider that fails to release it is left `voiding`: the cancel is done (the
    order is no longer a buyer, and can no longer be paid) and the hold is released by the deal sweep.

    `client_key` (the request's Idempotency-Key) is kept by the cancel itself (`write_keys`): the cancel
    sent again with it is answered with the order however long after, never refused `not_cancellable`.
    """
    order = order_for_buyer(order_id=order_id, user=by)
    kept = write_key_of(sender_id=by.id, key=client_key, request=cancel_request(order.id))
    done = write_key_order(kept=kept)
    if done is not None:
        return done
    if order.state not in (OrderState.PENDING, *HELD_STATES):
        raise NotCancellable(f"This order is {order.state} and can no longer be cancelled")
    try:
        order_void(order_id=order.id, reason=OrderEndReason.CANCELLED, kept=kept)
    except PaymentDeclined:
        order.refresh_from_db()
        if order.state != OrderState.VOIDING:
            raise
        logger.warning("order %s: the provider did not release the hold yet; the sweep will", order.id)
    order.refresh_from_db()
    if order.state == OrderState.AUTHORIZED:
        raise NotCancellable(
            "This deal has tipped and the order is being paid, so it can no longer be cancelled;"
            " once paid, it can be refunded under the deal's refund policy"
        )
    if order.state == OrderState.CAPTURED:  # paid meanwhile
        raise NotCancellable("This order is paid and can no longer be cancelled")
    return order


def order_for_buyer(*, order_id: int, user: Any) -> Order:
    order = Order.objects.select_related("deal").filter(id=order_id).first()
    if order is None or (order.buyer_id != user.id and not user.is_operator):
        raise NotFound("No such order")
    return order
