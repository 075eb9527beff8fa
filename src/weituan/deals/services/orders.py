"""Placing orders: the checkout (stock, quota, the payment hold), and a card provider's hold granted
later. What becomes of the hold after that (capture, void, expiry, cancel) is in `holds`.

An order is also the lifecycle of its payment hold (ORDER_GRAPH). Each step moves the order's state by
conditional UPDATE and writes its ledger posting (under a unique key) in the same transaction, so a
step that runs twice, or again after a crash, moves money once.
"""

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model
from django.utils import timezone

from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.core.idempotency import idempotency_mismatch
from weituan.core.rows import StatementsLost
from weituan.core.sqlite_checkpoint import checkpoints_held
from weituan.core.sqlite_writer import sqlite_writer
from weituan.core.states import advance
from weituan.deals.errors import (
    DealNotSelling,
    LimitReached,
    PriceMismatch,
    insufficient_balance,
)
from weituan.deals.models import (
    ORDER_GRAPH,
    Deal,
    DealState,
    Order,
    OrderEndReason,
    OrderState,
    TeamState,
)
from weituan.deals.models.deals import SELLING_STATES
from weituan.deals.pricing import capture_split, unit_price_of
from weituan.deals.services import ledger
from weituan.deals.services.checkout_read import deal_for_order
from weituan.deals.services.gateways import WALLET_REF, PaymentGateway, gateway_get
from weituan.deals.services.holds import order_capture, order_emit, order_key, order_reservation_expire
from weituan.deals.services.rows import (
    GENERIC_PLANS,
    BatchRefused,
    StatementBatch,
    row_insert_known,
    rows_insert,
)
from weituan.deals.services.shares import ShareRef, share_resolve
from weituan.deals.services.stock import (
    Taken,
    sold_out,
    stock_gate_give,
    stock_gate_take,
    stock_refusal,
    stock_take,
    stock_take_send,
)

logger = logging.getLogger(__name__)

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
    share_code: str = "",
    deal: Deal | None = None,
) -> Order:
    """Take stock and the buyer's quota, then hold the payment; all or nothing.

    `buyer` is the user; a solo order (no `team`) needs only their `id`. `deal`, when given, is the
    deal as `order_checkout_read` read it for this buyer and `client_key`; else it is read here.

    `client_key` (the Idempotency-Key) makes a retry return the order it placed; a retry asking for
    something else, like a key the buyer's other API writes used, is refused with
    `idempotency_mismatch`. `share_code` credits the order to the short link it was reached through
    (unknown codes, or another deal's, credit nothing).

    With the wallet everything is one transaction: the order, its hold posting (and, on a deal that has
    already tipped, its capture posting and vouchers), the tracking event, the quota and the stock, so a
    refusal (no stock, over the limit, not enough balance) leaves no trace. With a hosted gateway the
    order commits as `pending` with its stock reserved, the provider is called outside the transaction,
    and an unpaid reservation expires.
    """
    payment = gateway_get(gateway)
    # The order's id is drawn with the deal when the order may go out as one batch (_hold_batched).
    draw = connection.vendor == "postgresql" and payment.local and team is None
    if deal is None or deal.id != deal_id:
        deal = deal_for_order(deal_id=deal_id, buyer_id=buyer.id, client_key=client_key, draw_order_id=draw)
    elif not draw:
        deal.next_order_id = None  # type: ignore[attr-defined]  # an id drawn for a batch not sent: a gap
    if deal.replay_order_id is not None:  # type: ignore[attr-defined]
        return _replay(order_id=deal.replay_order_id, deal_id=deal_id, quantity=quantity,  # type: ignore[attr-defined]
                       gift_quantity=gift_quantity, team=team, expected_unit_price=expected_unit_price,
                       gateway=payment.name)  # fmt: skip
    if deal.key_used_elsewhere:  # type: ignore[attr-defined]
        raise idempotency_mismatch()
    in_team = team is not None
    order_request_check(
        deal=deal, buyer=buyer, quantity=quantity, gift_quantity=gift_quantity, in_team=in_team
    )
    unit_price = unit_price_of(deal_price=deal.deal_price, team_price=deal.team_price, in_team=in_team)
    if expected_unit_price is not None and expected_unit_price != unit_price:
        raise PriceMismatch(
            f"The price is {unit_price}, not {expected_unit_price}; reload the deal",
            unit_price=unit_price,
            currency=deal.currency,
        )
    share = share_resolve(code=share_code, deal_id=deal.id) if share_code else None
    from weituan.deals.services.teams import team_join, team_start

    own = quantity - gift_quantity
    gated = stock_gate_take(deal=deal, user_id=buyer.id, own=own, gifts=gift_quantity)
    batched = deal.next_order_id is not None  # type: ignore[attr-defined]
    statements_lost = False
    committed = False  # the order's batch committed it: an error after that must not undo the gate
    try:
        while True:
            try:
                # On SQLite the order's write transaction queues for the database's write lock rather
                # than polling for it (`sqlite_writer`), and the log's checkpoint waits until the lock
                # is released (`checkpoints_held`): a flash sale is a flood of these.
                with checkpoints_held(), sqlite_writer(), transaction.atomic():
                    team_row = None
                    if team == "start":
                        team_row = team_start(deal=deal, leader=buyer)
                    elif team is not None:
                        team_row = team_join(deal=deal, team_id=int(team), buyer=buyer)
                    # A solo wallet order on a deal that has already tipped is paid at once, as on Groupon.
                    pay_now = payment.local and team_row is None and deal.state == DealState.TIPPED
                    order = _order_row(
                        deal=deal, buyer=buyer, team=team_row, quantity=quantity, gift_quantity=gift_quantity,
                        unit_price=unit_price, payment=payment, client_key=client_key, share=share,
                        pay_now=pay_now,
                    )  # fmt: skip
                    if batched and team_row is None and not pay_now:
                        order.id = deal.next_order_id  # type: ignore[attr-defined]
                        taken, committed = _hold_batched(order=order, deal=deal, own=own, share=share)
                    else:
                        rows_insert([order])
                        if payment.local:
                            _hold_and_pay(order=order, deal=deal, pay_now=pay_now)
                        order_emit(order, "order_placed", share=share)
                        if order.state == OrderState.CAPTURED:
                            order_emit(order, "order_paid", share=share)
                        taken = stock_take(deal=deal, user_id=buyer.id, own=own, gifts=gift_quantity)
                    _after_order(order, deal=deal, taken=taken)
                break
            except _AccountsMissing:
                batched = False  # the step-by-step path creates the buyer's held account
            except StatementsLost:
                # The batch's prepared statements went with a rollback on this connection: nothing was
                # written; the same order again prepares them anew (once: a second loss is an error).
                if statements_lost:
                    raise
                statements_lost = True
            except _StockRefused as refused:
                raise stock_refusal(deal, refused.reason) or BatchRefused(refused.reason) from None
    except IntegrityError:
        if gated and not committed:
            stock_gate_give(deal_id=deal.id, user_id=buyer.id, own=own, gifts=gift_quantity)
        if client_key:
            replay = (
                Order.objects.filter(buyer_id=buyer.id, client_key=client_key)
                .values_list("id", flat=True)
                .first()
            )
            if replay is not None:
                return _replay(order_id=replay, deal_id=deal_id, quantity=quantity, gift_quantity=gift_quantity,
                               team=team, expected_unit_price=expected_unit_price, gateway=payment.name)  # fmt: skip
        raise
    except BaseException:
        if gated and not committed:
            stock_gate_give(deal_id=deal.id, user_id=buyer.id, own=own, gifts=gift_quantity)
        raise
    if not payment.local:
        order_authorize_remote(order_id=order.id)
        order.refresh_from_db()
        # The provider took its time: the deal may have tipped meanwhile.
        state = Deal.objects.filter(id=deal.id).values_list("state", flat=True).get()
    else:
        state = taken.state
    if order.state == OrderState.AUTHORIZED and _deal_settles_at_once(order, state_now=state):
        # The deal tipped after this order was read, or the order joined a team that is now full.
        order_capture(order_id=order.id)
        order.refresh_from_db()
        order.__dict__.pop("issued_vouchers", None)
    return order


def _replay(
    *,
    order_id: int,
    deal_id: int,
    quantity: int,
    gift_quantity: int,
    team: TeamChoice,
    expected_unit_price: int | None,
    gateway: str,
) -> Order:
    """The order a retry with the same Idempotency-Key placed, if it asked for the same thing."""
    order = Order.objects.select_related("deal", "team").get(id=order_id)
    if not replay_matches(order, deal_id=deal_id, quantity=quantity, gift_quantity=gift_quantity, team=team,
                          expected_unit_price=expected_unit_price, gateway=gateway):  # fmt: skip
        raise idempotency_mismatch()
    return order


def replay_matches(
    order: Any,
    *,
    deal_id: int,
    quantity: int,
    gift_quantity: int,
    team: TeamChoice,
    expected_unit_price: int | None,
    gateway: str,
) -> bool:
    """Whether a retry asks for what the order its key placed is (`order`: the Order, or anything with
    its fields; its team is read only for a retry that started one)."""
    return (
        order.deal_id == deal_id
        and order.quantity == quantity
        and order.gift_quantity == gift_quantity
        and order.gateway == gateway
        and (expected_unit_price is None or expected_unit_price == order.unit_price)
        and (team is None) == (order.team_id is None)
        and (team != "start" or (order.team is not None and order.team.leader_id == order.buyer_id))
        and (not isinstance(team, int) or order.team_id == team)
    )


def _order_row(
    *,
    deal: Deal,
    buyer: Any,
    team: Any,
    quantity: int,
    gift_quantity: int,
    unit_price: int,
    payment: PaymentGateway,
    client_key: str | None,
    share: ShareRef | None,
    pay_now: bool,
) -> Order:
    """The order row, not saved yet, born in the state its transaction leaves it in (a wallet hold is
    granted in the same transaction, so a wallet order is never seen pending)."""
    now = timezone.now()
    if payment.local:
        state = OrderState.CAPTURED if pay_now else OrderState.AUTHORIZED
    else:
        state = OrderState.PENDING
    order = Order(
        deal=deal,
        buyer_id=buyer.id,
        team=team,
        quantity=quantity,
        gift_quantity=gift_quantity,
        unit_price=unit_price,
        amount=unit_price * quantity,
        currency=deal.currency,
        gateway=payment.name,
        payment_ref=WALLET_REF if payment.local else "",
        state=state,
        state_changed_at=now if payment.local else None,
        captured_at=now if pay_now else None,
        client_key=client_key or None,
        share_code=share.code if share else "",
        share_link_id=share.link_id if share else None,
        reserve_expires_at=None
        if payment.local
        else now + timedelta(minutes=settings.DEALS_RESERVATION_MINUTES),
    )
    if isinstance(buyer, Model):  # the user at hand, as `Order(buyer=...)` would keep it
        Order.buyer.field.set_cached_value(order, buyer)
    return order


class _AccountsMissing(Exception):
    """The buyer's first order: an account its postings name does not exist yet."""


class _StockRefused(Exception):
    """The quota or the stock refused a batched order; turned into its error once the transaction is
    rolled back (telling sold out from not on sale reads the deal)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hold_batched(*, order: Order, deal: Deal, own: int, share: ShareRef | None) -> tuple[Taken, bool]:
    """PostgreSQL, a solo wallet order on a deal that has not tipped (its id already drawn): the same
    writes as the step-by-step path, sent as one query, refusing in the same order.

    On PostgreSQL every statement is a round trip, and under load a round trip costs more than the
    statement. None of these statements needs an answer to write the next (the order's id is known,
    the ledger accounts are named rather than read) and the refusals are decided by the statements
    themselves (`weituan_refuse`, which aborts the rest): the order, the wallet's lock and balance
    check, the postings with their entries, the outbox event and the quota with the stock go out
    together, with the COMMIT when the order's transaction is the outermost one: the deal's row, which
    every order of the deal updates, is then held only until the commit inside the server. Nothing
    else the order writes follows it in its transaction: the tip check is enqueued after the commit
    (and the deal sweep finds a deal whose check was lost). Each statement still takes its own
    snapshot, so the balance is read after the wallet's lock was granted. Returns the deal as the order
    left it, as `stock_take`, and whether the order is committed already.
    Raises `_AccountsMissing` (nothing written) when the buyer has no held account yet, and
    `_StockRefused` for the caller to turn into its error after the rollback.
    """
    buyer_id, currency, amount = order.buyer_id, order.currency, order.amount
    wallet, held = ledger.wallet_ref(buyer_id, currency), ledger.held_ref(buyer_id, currency)
    postings = [("authorize", order_key(order, "authorize"), [(wallet, -amount), (held, amount)])]
    with StatementBatch(prepared=True) as batch:
        batch.add(GENERIC_PLANS)
        row_insert_known(order, batch=batch)
        ledger.balance_check_send(batch, spend_from=wallet, amount=amount)
        ledger.postings_write_new_send(batch, order=order, postings=postings, refuse_in_sql=True)
        order_emit(order, "order_placed", share=share)
        taken = stock_take_send(
            batch, deal=deal, user_id=buyer_id, own=own, gifts=order.gift_quantity, refuse_in_sql=True
        )
    try:
        batch.send(commit=True)
    except BatchRefused as refused:
        balance = ledger.insufficient_balance_of(refused.reason)
        if balance is not None:
            raise insufficient_balance(balance=balance, needed=amount, currency=currency) from None
        if refused.reason == "accounts_missing":
            raise _AccountsMissing from None
        raise _StockRefused(refused.reason) from None
    order.issued_vouchers = []  # type: ignore[attr-defined]
    return taken(), batch.committed


def _hold_and_pay(*, order: Order, deal: Deal, pay_now: bool) -> None:
    """The wallet hold of a new order (and its capture, vouchers and referral credit when `pay_now`)."""
    from weituan.deals.services.referrals import referral_credit_for_capture
    from weituan.deals.services.vouchers import vouchers_issue

    buyer_id, currency, amount = order.buyer_id, order.currency, order.amount
    wallet, held = ledger.wallet_ref(buyer_id, currency), ledger.held_ref(buyer_id, currency)
    wanted = [wallet, held]
    if pay_now:
        merchant, fee_account = (
            ledger.merchant_ref(deal.merchant_id, currency),
            ledger.platform_fee_ref(currency),
        )
        wanted += [merchant, fee_account]
    accounts, balance = ledger.accounts_with_balance(wanted=wanted, spend_from=wallet)
    if balance < amount:
        raise insufficient_balance(balance=balance, needed=amount, currency=currency)
    postings = [
        ("authorize", order_key(order, "authorize"), [(accounts[wallet], -amount), (accounts[held], amount)])
    ]
    if pay_now:
        share, fee = capture_split(
            unit_price=order.unit_price, quantity=order.quantity, fee_bps=deal.platform_fee_bps
        )
        postings.append(
            ("capture", order_key(order, "capture"),
             [(accounts[held], -amount), (accounts[merchant], share), (accounts[fee_account], fee)])
        )  # fmt: skip
    ledger.postings_write_new(order=order, postings=postings, wallet_balances={accounts[wallet].id: balance})
    # What the answer shows, without reading the vouchers back.
    order.issued_vouchers = vouchers_issue(order=order) if pay_now else []  # type: ignore[attr-defined]
    if pay_now:
        referral_credit_for_capture(order=order)


def _deal_settles_at_once(order: Order, *, state_now: str) -> bool:
    if state_now not in (DealState.TIPPED, DealState.SOLD_OUT):
        return False
    if order.team_id is None:
        return True
    return order.team is not None and order.team.state == TeamState.FILLED


def order_request_check(*, deal: Deal, buyer: Any, quantity: int, gift_quantity: int, in_team: bool) -> None:
    """Refuse an order the deal, as read a moment ago, cannot take: a bad quantity, the merchant's own,
    a draft, no units left, not on sale, gifts the deal does not sell, a team order it cannot be."""
    if quantity < 1 or gift_quantity < 0 or gift_quantity > quantity:
        raise ValidationFailed(
            "quantity must be at least 1 and gifts at most the quantity", code="invalid_quantity"
        )
    if buyer.id == deal.merchant_id:
        raise PermissionDenied("A merchant cannot buy their own deal", code="own_deal")
    if deal.state == DealState.DRAFT:  # unpublished: to anyone but its merchant, as if there were none
        raise NotFound("No such deal")
    now = timezone.now()
    # Read a moment ago: a refusal here is what the stock UPDATE would say, without a transaction.
    if deal.state == DealState.SOLD_OUT or (
        deal.state in SELLING_STATES and deal.sold + quantity > deal.released
    ):
        units_left = deal.released - deal.sold if deal.state in SELLING_STATES else 0
        raise sold_out(deal, units_left=units_left)
    if deal.state not in SELLING_STATES or not (deal.starts_at <= now < deal.ends_at):
        raise DealNotSelling(f"This deal is {deal.state}, not on sale")
    if gift_quantity and not deal.gift_limit:  # said plainly, rather than as the limit of own units
        raise LimitReached(
            f"This deal sells no gifts: you may buy {deal.per_user_limit} for yourself",
            per_user_limit=deal.per_user_limit,
            gift_limit=0,
        )
    if in_team:
        if not deal.team_mode:
            raise ValidationFailed("This deal has no team price", code="not_team_deal")
        if quantity != 1 or gift_quantity:
            raise ValidationFailed("A team member buys one unit", code="team_quantity")


def order_authorized(*, order: Order, payment: PaymentGateway, ref: str) -> bool:
    """Record a hold the gateway granted: pending -> authorized plus the hold posting, in one transaction.

    Inside order_place this is already the order's transaction, so no savepoint is needed: a failure
    rolls the whole order back.
    """
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

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
        # A hold granted after its order was placed may bring the buyer that tips the deal: the check the
        # order asked for when it reserved its units did not count it yet.
        if Deal.objects.filter(
            id=order.deal_id, state=DealState.LIVE, takers__gte=F("tipping_point")
        ).exists():
            schedule_at(tasks.deal_tip_check_task, timezone.now(), order.deal_id)
    order.state, order.payment_ref = OrderState.AUTHORIZED, ref
    return True


def deal_tip_check_if_due(deal: Deal, taken: Taken) -> None:
    """Only an order (or a batch of them) that leaves a live deal with as many takers as its tipping
    point (the buyers the check counts are among them), or that takes the last unit, asks for the tip
    check; later orders of a tipped deal are paid at once and need none."""
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    if (
        taken.state == DealState.LIVE and taken.takers >= deal.tipping_point
    ) or taken.sold >= deal.max_quantity:
        schedule_at(tasks.deal_tip_check_task, timezone.now(), deal.id)


def _after_order(order: Order, *, deal: Deal, taken: Taken) -> None:
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    deal_tip_check_if_due(deal, taken)
    if order.state == OrderState.PENDING and order.reserve_expires_at:
        schedule_at(tasks.order_reservation_expire_task, order.reserve_expires_at, order.id)


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
        # The hold was refused, or not granted in time: the reservation ends with the payment failed.
        order_reservation_expire(order_id=order.id, force=True, reason=OrderEndReason.PAYMENT_DECLINED)
        raise
    if not order_authorized(order=order, payment=payment, ref=ref):
        # The reservation expired while the provider answered: release the hold it granted.
        payment.void(ref=ref, key=order_key(order, "void"))
        return False
    return True
