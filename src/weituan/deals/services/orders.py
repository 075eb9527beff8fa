"""Placing orders and moving their payment holds: authorize, capture, void, expire.

An order is also the lifecycle of its payment hold (ORDER_GRAPH). Each step moves the order's state by
conditional UPDATE and writes its ledger posting (under a unique key) in the same transaction, so a
step that runs twice, or again after a crash, moves money once.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.core.states import advance
from weituan.deals.errors import DealNotSelling, PriceMismatch, SoldOut
from weituan.deals.integrations import order_event_record
from weituan.deals.models import ORDER_GRAPH, Deal, DealState, Order, OrderState
from weituan.deals.models.deals import SELLING_STATES
from weituan.deals.pricing import capture_split, unit_price_of
from weituan.deals.services import ledger
from weituan.deals.services.gateways import PaymentGateway, gateway_get
from weituan.deals.services.stock import stock_gate_give, stock_gate_take, stock_return, stock_take

TeamChoice = str | int | None  # "start", an open team's id, or None for a solo order


def order_place(
    *,
    deal_id: int,
    buyer: Any,
    quantity: int,
    gift_quantity: int = 0,
    team: TeamChoice = None,
    expected_unit_price: int | None = None,
    client_key: str | None = None,
    gateway: str = "wallet",
) -> Order:
    """Take stock and the buyer's quota, then hold the payment; all or nothing.

    With the wallet the hold is part of the same transaction, so a refusal (no stock, over the limit,
    not enough balance) leaves no trace. With a hosted gateway the order commits as `pending` with its
    stock reserved, the provider is called outside the transaction, and an unpaid reservation expires.
    """
    from weituan.deals.services.teams import team_join, team_start

    if client_key:
        existing = Order.objects.filter(buyer=buyer, client_key=client_key).first()
        if existing is not None:
            return existing
    deal = Deal.objects.filter(id=deal_id).first()
    if deal is None:
        raise NotFound("No such deal")
    in_team = team is not None
    _check_request(deal=deal, buyer=buyer, quantity=quantity, gift_quantity=gift_quantity, in_team=in_team)
    unit_price = unit_price_of(deal_price=deal.deal_price, team_price=deal.team_price, in_team=in_team)
    if expected_unit_price is not None and expected_unit_price != unit_price:
        raise PriceMismatch(
            f"The price is {unit_price}, not {expected_unit_price}; reload the deal", unit_price=unit_price
        )
    payment = gateway_get(gateway)
    own = quantity - gift_quantity
    gated = stock_gate_take(deal=deal, user_id=buyer.id, own=own, gifts=gift_quantity)
    try:
        with transaction.atomic():
            sold = stock_take(deal=deal, user_id=buyer.id, own=own, gifts=gift_quantity)
            team_row = None
            if team == "start":
                team_row = team_start(deal=deal, leader=buyer)
            elif team is not None:
                team_row = team_join(deal=deal, team_id=int(team), buyer=buyer)
            order = Order.objects.create(
                deal=deal,
                buyer=buyer,
                team=team_row,
                quantity=quantity,
                gift_quantity=gift_quantity,
                unit_price=unit_price,
                amount=unit_price * quantity,
                currency=deal.currency,
                gateway=payment.name,
                client_key=client_key or None,
                reserve_expires_at=timezone.now() + timedelta(minutes=settings.DEALS_RESERVATION_MINUTES),
            )
            if payment.local:
                ref = payment.authorize(
                    buyer_id=buyer.id,
                    amount=order.amount,
                    currency=order.currency,
                    key=order_key(order, "authorize"),
                )
                order_authorized(order=order, payment=payment, ref=ref)
            _after_order(order, sold_now=sold)
    except IntegrityError:
        if gated:
            stock_gate_give(deal_id=deal.id, user_id=buyer.id, own=own, gifts=gift_quantity)
        if client_key:
            replay = Order.objects.filter(buyer=buyer, client_key=client_key).first()
            if replay is not None:
                return replay
        raise
    except BaseException:
        if gated:
            stock_gate_give(deal_id=deal.id, user_id=buyer.id, own=own, gifts=gift_quantity)
        raise
    if not payment.local:
        order_authorize_remote(order_id=order.id)
        order.refresh_from_db()
    if order.state == OrderState.AUTHORIZED and _deal_settles_at_once(order):
        # The deal has already tipped: a new order is paid at once, as on Groupon.
        order_capture(order_id=order.id)
        order.refresh_from_db()
    return order


def _deal_settles_at_once(order: Order) -> bool:
    from weituan.deals.models import TeamState

    state = Deal.objects.filter(id=order.deal_id).values_list("state", flat=True).get()
    if state not in (DealState.TIPPED, DealState.SOLD_OUT):
        return False
    if order.team_id is None:
        return True
    return order.team is not None and order.team.state == TeamState.FILLED


def _check_request(*, deal: Deal, buyer: Any, quantity: int, gift_quantity: int, in_team: bool) -> None:
    if quantity < 1 or gift_quantity < 0 or gift_quantity > quantity:
        raise ValidationFailed("quantity must be at least 1 and gifts at most the quantity")
    if buyer.id == deal.merchant_id:
        raise PermissionDenied("A merchant cannot buy their own deal", code="own_deal")
    now = timezone.now()
    if deal.state == DealState.SOLD_OUT:
        raise SoldOut("This deal has no units left")
    if deal.state not in SELLING_STATES or not (deal.starts_at <= now < deal.ends_at):
        raise DealNotSelling(f"This deal is {deal.state}, not on sale")
    if in_team:
        if not deal.team_mode:
            raise ValidationFailed("This deal has no team price", code="not_team_deal")
        if quantity != 1 or gift_quantity:
            raise ValidationFailed("A team member buys one unit", code="team_quantity")


def order_key(order: Order, step: str) -> str:
    return f"order:{order.id}:{step}"


def order_authorized(*, order: Order, payment: PaymentGateway, ref: str) -> bool:
    """Record a hold the gateway granted: pending -> authorized plus the hold posting, in one transaction.

    Inside order_place this is already the order's transaction, so no savepoint is needed: a failure
    rolls the whole order back.
    """
    with transaction.atomic(savepoint=False):
        moved = advance(
            ORDER_GRAPH, Order.objects.filter(id=order.id), OrderState.AUTHORIZED, payment_ref=ref
        )
        if not moved:
            return False
        ledger.posting_write(
            kind="authorize",
            key=order_key(order, "authorize"),
            order=order,
            lines=[
                (payment.funding_account(buyer_id=order.buyer_id, currency=order.currency), -order.amount),
                (ledger.held_account(order.buyer_id, order.currency), order.amount),
            ],
        )
    order.state, order.payment_ref = OrderState.AUTHORIZED, ref
    return True


def _after_order(order: Order, *, sold_now: int) -> None:
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    deal = order.deal
    if (deal.state == DealState.LIVE and sold_now >= deal.tipping_point) or sold_now >= deal.max_quantity:
        schedule_at(tasks.deal_tip_check_task, timezone.now(), order.deal_id)
    if order.state == OrderState.PENDING and order.reserve_expires_at:
        schedule_at(tasks.order_reservation_expire_task, order.reserve_expires_at, order.id)
    _emit(order, "order_placed")


def _emit(order: Order, event: str) -> None:
    """Hand the business event to tracking's outbox in the current transaction."""
    order_event_record(order=order, event=event)


def order_authorize_remote(*, order_id: int) -> bool:
    """Ask a hosted gateway for the hold of a pending order (outside any transaction)."""
    order = Order.objects.get(id=order_id)
    if order.state != OrderState.PENDING:
        return False
    payment = gateway_get(order.gateway)
    try:
        ref = payment.authorize(
            buyer_id=order.buyer_id,
            amount=order.amount,
            currency=order.currency,
            key=order_key(order, "authorize"),
        )
    except Exception:
        order_reservation_expire(order_id=order.id, force=True)
        raise
    if not order_authorized(order=order, payment=payment, ref=ref):
        # The reservation expired while the provider answered: release the hold it granted.
        payment.void(ref=ref, key=order_key(order, "void"))
        return False
    return True


def order_capture(*, order_id: int) -> bool:
    """Capture one authorized hold; returns False if it was not authorized (already captured, voided...)."""
    from weituan.deals.services.referrals import referral_credit_for_capture
    from weituan.deals.services.vouchers import vouchers_issue

    order = Order.objects.select_related("deal").get(id=order_id)
    if order.state != OrderState.AUTHORIZED:
        return False
    payment = gateway_get(order.gateway)
    if not payment.local:
        payment.capture(
            ref=order.payment_ref,
            amount=order.amount,
            currency=order.currency,
            key=order_key(order, "capture"),
        )
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
        _emit(order, "order_paid")
    return True


def order_void(*, order_id: int) -> bool:
    """Release one hold and give its stock back; pending reservations simply expire."""
    order = Order.objects.get(id=order_id)
    if order.state == OrderState.PENDING:
        return order_reservation_expire(order_id=order.id, force=True)
    if order.state != OrderState.AUTHORIZED:
        return False
    payment = gateway_get(order.gateway)
    if not payment.local:
        payment.void(ref=order.payment_ref, key=order_key(order, "void"))
    with transaction.atomic():
        moved = advance(ORDER_GRAPH, Order.objects.filter(id=order.id), OrderState.VOIDED)
        if not moved:
            return False
        ledger.posting_write(
            kind="void",
            key=order_key(order, "void"),
            order=order,
            lines=[
                (ledger.held_account(order.buyer_id, order.currency), -order.amount),
                (payment.funding_account(buyer_id=order.buyer_id, currency=order.currency), order.amount),
            ],
        )
        _return_stock(order)
    return True


def order_reservation_expire(*, order_id: int, force: bool = False) -> bool:
    """Return the stock of a reservation whose payment never completed (due, or `force`d)."""
    queryset = Order.objects.filter(id=order_id)
    if not force:
        queryset = queryset.filter(reserve_expires_at__lte=timezone.now())
    with transaction.atomic():
        if not advance(ORDER_GRAPH, queryset, OrderState.EXPIRED):
            return False
        _return_stock(Order.objects.get(id=order_id))
    return True


def _return_stock(order: Order) -> None:
    from weituan.deals.services.teams import team_leave

    stock_return(
        deal_id=order.deal_id,
        user_id=order.buyer_id,
        own=order.quantity - order.gift_quantity,
        gifts=order.gift_quantity,
    )
    if order.team_id:
        team_leave(team_id=order.team_id)


def order_cancel(*, order_id: int, by: Any) -> Order:
    """The buyer withdraws an order whose payment is still only held."""
    order = order_for_buyer(order_id=order_id, user=by)
    if order.state not in (OrderState.PENDING, OrderState.AUTHORIZED):
        raise ValidationFailed(
            f"This order is {order.state} and can no longer be cancelled", code="not_cancellable"
        )
    order_void(order_id=order.id)
    order.refresh_from_db()
    return order


def order_for_buyer(*, order_id: int, user: Any) -> Order:
    order = Order.objects.select_related("deal").filter(id=order_id).first()
    if order is None or (order.buyer_id != user.id and not user.is_operator):
        raise NotFound("No such order")
    return order
