"""Combined checkout (PostgreSQL): the solo wallet orders of one deal that arrive while another batch of
its orders is being written share one transaction, written as sets.

In a flash sale hundreds of buyers ask for the same deal at once, and each order alone costs the
database a transaction of a dozen statements, all of which end on the deal's one row. Here a serving
thread that finds no batch of the deal running places the orders waiting at that moment, its own among
them, and hands the next batch to a thread whose order arrived meanwhile; the others wait for their
answers. A batch is:

1. one read of every order's token, replayed key and a drawn id, and of the deal;
2. one round trip to the Redis stock gate (each order's Lua take, when REDIS_URL is set);
3. one transaction of set-based statements: the orders, every wallet locked, in id order, the
   balances checked after the locks were granted, the orders' postings and entries, their tracking
   events, the buyers' quotas, and the deal's row updated once, last, with the COMMIT in the same
   round trip.

The writes are those of the per-order path (`orders._hold_batched`), in the same lock order (the
order's key, the wallets, the quotas, then the deal's row), so the two paths run side by side without
deadlock. Anything the batch does not decide the per-order way is left to that path, in the order's
own thread, which then answers it exactly as it answers every order: a token that does not authorize, a key already used, a
deal not live (a tipped deal pays at once, with vouchers), a refusal of any kind (sold out, a limit, a
balance), a second order of one buyer in a batch. A batch the database or the gate refuses as a whole
is rolled back, its units given back in the gate, and each of its orders goes the per-order way.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.utils import timezone

from weituan.accounts.tokens import access_token_viewer_sql
from weituan.core.errors import ServiceError
from weituan.core.front import connection_ready
from weituan.core.idempotency import MAX_KEY_LENGTH, USER_SCOPE_PREFIX, idempotency_mismatch
from weituan.core.redis import REDIS_UNREACHABLE, redis_enabled
from weituan.core.rows import RowReader, StatementsLost
from weituan.deals.integrations import orders_placed_record
from weituan.deals.models import (
    Account,
    AccountKind,
    Deal,
    DealState,
    Entry,
    Order,
    OrderState,
    Posting,
    UserDealQuota,
)
from weituan.deals.models.deals import SELLING_STATES
from weituan.deals.services import ledger
from weituan.deals.services.checkout_read import key_used_sql, order_sequence
from weituan.deals.services.gateways import WALLET_REF
from weituan.deals.services.orders import deal_tip_check_if_due, order_request_check, replay_matches
from weituan.deals.services.rows import GENERIC_PLANS, BatchRefused, StatementBatch, values_preparers
from weituan.deals.services.stock import Taken, stock_gate_give_many, stock_gate_take_many

logger = logging.getLogger(__name__)

# The most orders one batch writes: beyond this the statements' arrays grow and a batch's buyers wait
# longer for its round trip than they gain.
BATCH_MOST = 64


def _held_lock() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False, slots=True)
class Ask:
    """One solo wallet order waiting to be placed: the caller's token (its hash, as the token statement
    reads it), what it asked for, and `allowed`, whether the token's granted scopes let it order."""

    token_hash: str
    deal_id: int
    quantity: int
    gift_quantity: int
    unit_price: int | None
    client_key: str | None
    allowed: Callable[[str], bool]
    # Filled by the batch: the order's answer (set only once it is committed), or the error to answer;
    # both None when the order goes the per-order way (nothing was written for it).
    placed: "Placed | None" = None
    error: BaseException | None = None
    user_id: int | None = None
    scopes: str = ""
    leads: bool = False
    # Held until the ask is answered or handed the next batch (a bare lock: the cheapest wake-up).
    ready: Any = field(default_factory=_held_lock)


@dataclass(slots=True)
class Placed:
    """An order the batch placed (or a retry found placed), with the fields of an Order that
    `schemas.order_body` shows and `orders.replay_matches` compares: it is shown as that order is."""

    id: int
    deal_id: int
    quantity: int
    gift_quantity: int
    unit_price: int
    amount: int
    currency: str
    created_at: datetime
    settled: bool = False  # the deal had tipped by the batch's write: the order is to be captured at once
    share_code: str = ""
    gateway: str = "wallet"
    state: str = OrderState.AUTHORIZED
    team_id: None = None
    end_reason: str = ""
    captured_at: None = None
    issued_vouchers: tuple[()] = ()  # held, not paid: no voucher, and no refund to read


def combining() -> bool:
    """Whether orders are combined here: on PostgreSQL, unless WEITUAN_CHECKOUT_COMBINE turns it off."""
    return bool(settings.DEALS_CHECKOUT_COMBINE) and connections[DEFAULT_DB_ALIAS].vendor == "postgresql"


class _Line:
    """The orders of one deal waiting for a batch, and whether a batch of the deal is running."""

    __slots__ = ("busy", "waiting")

    def __init__(self) -> None:
        self.waiting: list[Ask] = []
        self.busy = False


_lock = threading.Lock()
_lines: dict[int, _Line] = {}


def order_place_combined(ask: Ask) -> None:
    """Place `ask` in a batch with the orders of its deal waiting now. On return `ask.placed` is its
    answer, or `ask.error` the error to answer (a key already used for another write, or a fault once
    the order may have been written); neither means the order is to be placed the per-order way
    (nothing was written for it)."""
    with _lock:
        line = _lines.get(ask.deal_id)
        if line is None:
            line = _lines[ask.deal_id] = _Line()
        line.waiting.append(ask)
        ask.leads = not line.busy
        line.busy = True
    if not ask.leads:
        ask.ready.acquire()  # answered, or handed the next batch
        if not ask.leads:
            return
    with _lock:
        batch = line.waiting[:BATCH_MOST]
        del line.waiting[:BATCH_MOST]
    try:
        batch_place(batch)
    finally:
        with _lock:
            if line.waiting:
                line.waiting[0].leads = True
                line.waiting[0].ready.release()
            else:
                line.busy = False
                _lines.pop(ask.deal_id, None)
        for other in batch:
            if other is not ask:
                other.ready.release()


def batch_place(batch: list[Ask]) -> None:
    """Place the asks of one deal as one batch, on a thread of the caller's (the server's event loop
    hands its batches to one): each ends as `order_place_combined` leaves it."""
    try:
        connection_ready()
        _batch_place(batch)
    except Exception:
        # Nothing was written for an ask left without an answer: each goes the per-order way.
        logger.exception("combined checkout of deal %s left to the per-order way", batch[0].deal_id)


def _batch_place(batch: list[Ask]) -> None:
    """Read, take in the gate and write the orders of `batch`; an error before the write's commit
    leaves every order to the per-order way."""
    try:
        deal, ids = _read(batch)
        if deal is None:
            return
        chosen = _chosen(batch, deal, ids)
        if chosen:
            chosen = _gate_take(deal, chosen)
    except _FAULTS:
        return  # the per-order way reads again and answers as it answers such a fault
    if chosen:
        _write(deal, chosen)


_FAULTS: tuple[type[Exception], ...] = (DatabaseError, StatementsLost, *REDIS_UNREACHABLE)


def _read(batch: list[Ask]) -> tuple[Deal | None, dict[int, int]]:
    """The deal, and for each ask the caller (user id, scopes) and, for an ask free to be placed here (a
    key not used before, the buyer's wallet and held accounts in the deal's currency both there), the
    id drawn for its order, by its index in `batch`. A retry of an order still held is answered here
    (`_replayed`), and a key the buyer's other writes used is refused here, as the per-order way does."""
    statements = _statements()
    values = [batch[0].deal_id, [ask.token_hash for ask in batch], [ask.client_key for ask in batch], True]
    for attempt in (1, 2):
        try:
            with transaction.atomic():  # for its generic plans: sent with its BEGIN and COMMIT
                with StatementBatch(prepared=True) as read:
                    read.add(GENERIC_PLANS)
                    deal_answer = read.add(statements.deal, [batch[0].deal_id])
                    asks_answer = read.add(statements.asks, values)
                read.send(commit=True)
            break
        except StatementsLost:
            if attempt == 2:  # prepared anew on the second: lost again is a fault
                raise
    rows = deal_answer().rows
    deal = _DEAL_ROWS.instance(rows[0]) if rows else None
    ids: dict[int, int] = {}
    width = len(_REPLAY_COLUMNS)
    for index, user_id, scopes, *found in asks_answer().rows:
        ask = batch[index - 1]
        ask.user_id, ask.scopes = user_id, scopes or ""
        replay, (used, accounts, drawn) = found[:width], found[width:]
        if user_id is None or not ask.allowed(ask.scopes) or deal is None:
            continue
        if replay[0] is not None:
            ask.placed = _replayed(ask, replay)
        elif used:  # the key named another of the buyer's writes: refused as the per-order way does
            ask.error = idempotency_mismatch()
        elif accounts == 2:  # a buyer's first order creates their held account: the per-order way makes it
            ids[index - 1] = drawn
    return deal, ids


# What a retry's answer shows of the order its key placed (`_replayed`).
_REPLAY_COLUMNS = (
    "id", "deal_id", "quantity", "gift_quantity", "unit_price", "amount", "currency", "gateway", "state",
    "team_id", "share_code", "created_at",
)  # fmt: skip


def _replayed(ask: Ask, row: list[Any]) -> "Placed | None":
    """The answer to a retry of an order placed under its key and still held (authorized: no voucher,
    no refund), when the retry asks for the same (`orders._replay`); None for any other, which the
    per-order way answers."""
    order_id, deal_id, quantity, gifts, unit_price, amount, currency, gateway, state, team_id, share, at = row
    if state != OrderState.AUTHORIZED or team_id is not None:
        return None
    placed = Placed(
        id=order_id, deal_id=deal_id, quantity=quantity, gift_quantity=gifts, unit_price=unit_price,
        amount=amount, currency=currency, created_at=at, share_code=share, gateway=gateway,
    )  # fmt: skip
    same = replay_matches(placed, deal_id=ask.deal_id, quantity=ask.quantity, gift_quantity=ask.gift_quantity,
                          team=None, expected_unit_price=ask.unit_price, gateway="wallet")  # fmt: skip
    return placed if same else None


def _chosen(batch: list[Ask], deal: Deal, ids: dict[int, int]) -> list[tuple[Ask, int]]:
    """The asks this batch places, with their order ids: those the per-order path would place with a
    hold on a live deal (`order_place`'s checks, its refusals left to it), one per buyer, as many units
    as the deal has left."""
    if deal.state != DealState.LIVE:
        return []  # a tipped deal's order is paid at once
    chosen: list[tuple[Ask, int]] = []
    buyers: set[int] = set()
    units = deal.sold
    for index, ask in enumerate(batch):
        order_id = ids.get(index)
        if order_id is None or ask.user_id is None or ask.user_id in buyers:
            continue
        try:
            order_request_check(deal=deal, buyer=_Buyer(ask.user_id), quantity=ask.quantity,
                                gift_quantity=ask.gift_quantity, in_team=False)  # fmt: skip
        except ServiceError:
            continue
        if (
            (ask.client_key is not None and len(ask.client_key) > MAX_KEY_LENGTH)
            or ask.quantity - ask.gift_quantity > deal.per_user_limit
            or ask.gift_quantity > deal.gift_limit
            or (ask.unit_price is not None and ask.unit_price != deal.deal_price)
            or units + ask.quantity > deal.released
        ):
            continue
        buyers.add(ask.user_id)
        units += ask.quantity
        chosen.append((ask, order_id))
    return chosen


class _Buyer(NamedTuple):
    """The caller, as `order_request_check` reads a solo order's buyer."""

    id: int


def _gate_take(deal: Deal, chosen: list[tuple[Ask, int]]) -> list[tuple[Ask, int]]:
    """Take each chosen order's units in the Redis stock gate, all in one round trip; those the gate
    refuses (or finds missing) are left to the per-order way, which answers the refusal."""
    if not redis_enabled():
        return chosen
    taken = stock_gate_take_many(deal=deal, takes=_units(chosen))
    return [pair for pair, took in zip(chosen, taken, strict=True) if took]


def _units(chosen: list[tuple[Ask, int]]) -> list[tuple[int, int, int]]:
    """Each chosen order's buyer, own units and gift units, as the gate takes and gives them."""
    return [(ask.user_id or 0, ask.quantity - ask.gift_quantity, ask.gift_quantity) for ask, _ in chosen]


def _write(deal: Deal, chosen: list[tuple[Ask, int]]) -> None:
    """Write the chosen orders in one transaction. Refused, or failed before its commit: rolled back,
    the gate's units given back, and the orders left to the per-order way. Failed after its commit:
    every order's error (each was placed; a retry with its key is answered with it)."""
    try:
        with transaction.atomic():
            batch, taken, created_at = _write_batch(deal, chosen)
            batch.send(commit=True)
            sold, takers, state = taken().rows[0][1:]
    except Exception as exc:
        if isinstance(exc, DatabaseError) and not _rolled_back(exc):
            # The connection failed with the batch sent: whether it committed is not known here (the
            # server may still be running it). Each order is answered the error, as the per-order way
            # answers such a failure; a retry under its key finds the order if it was placed.
            for ask, _ in chosen:
                ask.error = exc
            return
        stock_gate_give_many(deal_id=deal.id, gives=_units(chosen))
        if not isinstance(exc, BatchRefused | StatementsLost | DatabaseError):
            logger.exception("combined checkout of deal %s left to the per-order way", deal.id)
        return
    settled = state in (DealState.TIPPED, DealState.SOLD_OUT)  # the deal tipped after the batch read it
    for ask, order_id in chosen:
        ask.placed = Placed(
            id=order_id, deal_id=deal.id, quantity=ask.quantity, gift_quantity=ask.gift_quantity,
            unit_price=deal.deal_price, amount=deal.deal_price * ask.quantity, currency=deal.currency,
            created_at=created_at, settled=settled,
        )  # fmt: skip
    try:
        deal_tip_check_if_due(deal, Taken(sold=sold, takers=takers, state=state))
    except Exception:
        # The orders are placed; the deals sweep finds a deal whose tip check was not enqueued.
        logger.exception("tip check of deal %s not enqueued after a combined checkout", deal.id)


def _write_batch(
    deal: Deal, chosen: list[tuple[Ask, int]]
) -> tuple[StatementBatch, Callable[[], Any], datetime]:
    """The batch of the chosen orders' writes, not sent yet; the call that reads the deal's row as the
    batch leaves it; and the orders' time."""
    statements = _statements()
    now = timezone.now()
    currency = deal.currency
    order_ids, buyers, quantities, gifts, amounts, keys = [], [], [], [], [], []
    wallets, helds, posting_keys, owns = [], [], [], []
    for ask, order_id in chosen:
        buyer = ask.user_id or 0
        order_ids.append(order_id)
        buyers.append(buyer)
        quantities.append(ask.quantity)
        gifts.append(ask.gift_quantity)
        amounts.append(deal.deal_price * ask.quantity)
        keys.append(ask.client_key)
        owns.append(ask.quantity - ask.gift_quantity)
        wallets.append(ledger.wallet_ref(buyer, currency).identity)
        helds.append(ledger.held_ref(buyer, currency).identity)
        posting_keys.append(f"order:{order_id}:authorize")
    template = Order(
        deal_id=deal.id, unit_price=deal.deal_price, currency=currency, gateway="wallet",
        payment_ref=WALLET_REF, state=OrderState.AUTHORIZED, state_changed_at=now, created_at=now,
    )  # fmt: skip
    constants = [prepare(template) for prepare in values_preparers(Order, statements.order_constant_fields)]
    batch = StatementBatch(prepared=True)
    with batch:
        batch.add(GENERIC_PLANS)
        # The orders first, as the per-order way writes its order before it locks the wallet: a retry
        # racing its first attempt on the other path waits on the order's key, not on the wallet.
        batch.add(statements.orders, [*constants, order_ids, buyers, quantities, gifts, amounts, keys])
        batch.add(statements.lock, [sorted(wallets)])
        batch.add(statements.check, [wallets + helds, 2 * len(wallets), wallets, amounts])
        batch.add(statements.postings, [order_ids, posting_keys, wallets, helds, amounts, now])
        orders_placed_record(
            [(order_id, buyer, quantity, amount)
             for order_id, buyer, quantity, amount in zip(order_ids, buyers, quantities, amounts, strict=True)],
            deal_id=deal.id, currency=currency, gateway="wallet",
        )  # fmt: skip
        taken = batch.add(
            statements.stock,
            [buyers, owns, gifts, deal.id, deal.per_user_limit, deal.gift_limit, sum(quantities), deal.id,
             *SELLING_STATES, sum(quantities), len(chosen)],
        )  # fmt: skip
    return batch, taken, template.created_at  # the time its field's pre_save stamped for the INSERT


def _rolled_back(exc: DatabaseError) -> bool:
    """Whether the batch's failure is one only its writes can meet, which rolled its transaction back
    before the COMMIT: a constraint (another attempt of an order under its key), a deadlock or a
    serialization failure, a lock not available, a cancelled statement. A failure of the connection
    itself, or any other, says nothing of whether the batch committed."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    sqlstate = str(getattr(cause, "sqlstate", None) or "")
    return sqlstate[:2] in _ROLLED_BACK_CLASSES or sqlstate == "57014"


# SQLSTATE classes: integrity constraint violation, transaction rollback, object not in prerequisite
# state (a lock not available).
_ROLLED_BACK_CLASSES = ("23", "40", "55")


class _Statements:
    """The batch's statements, made once per database."""

    def __init__(self) -> None:
        db = connections[DEFAULT_DB_ALIAS]
        quote = db.ops.quote_name
        orders_table = quote(Order._meta.db_table)
        accounts, entries = quote(Account._meta.db_table), quote(Entry._meta.db_table)
        self.deal = f"SELECT {_DEAL_ROWS.columns('d')} FROM {quote(Deal._meta.db_table)} d WHERE d.id = %s"  # noqa: S608
        key_used = key_used_sql(
            f"'{USER_SCOPE_PREFIX}' || CAST(v.user_id AS text)", "v.user_id", "v.user_id", key="asked.key"
        )
        wallet, held = AccountKind.WALLET.value, AccountKind.HELD.value
        self.asks = (
            f"SELECT asked.i, v.user_id, v.scopes, {', '.join(f'placed.{name}' for name in _REPLAY_COLUMNS)},"  # noqa: S608
            f" {key_used},"
            f" (SELECT count(*) FROM {accounts} a WHERE a.identity IN ('{wallet}:' || v.user_id || c.tail,"
            f" '{held}:' || v.user_id || c.tail)), nextval({order_sequence()})"
            f" FROM (SELECT ':' || d.currency AS tail FROM {quote(Deal._meta.db_table)} d WHERE d.id = %s) AS c,"
            " unnest(%s::text[], %s::text[]) WITH ORDINALITY AS asked (token_hash, key, i)"
            # Kept a subquery (OFFSET 0): each token is one lookup of its index, whatever the plan
            # thinks of the tokens table's size.
            f" LEFT JOIN LATERAL ({access_token_viewer_sql('asked.token_hash')} OFFSET 0) AS v ON true"
            f" LEFT JOIN LATERAL (SELECT {', '.join(f'o.{name}' for name in _REPLAY_COLUMNS)} FROM {orders_table} o"
            " WHERE o.buyer_id = v.user_id AND o.client_key = asked.key OFFSET 0) AS placed ON true"
            " ORDER BY asked.i"
        )
        self.lock = f"SELECT id FROM {accounts} WHERE identity = ANY(%s::text[]) ORDER BY id FOR UPDATE"  # noqa: S608
        # After the locks, in a statement (and snapshot) of its own: every account named exists, and
        # each wallet's running balance covers its order.
        self.check = (
            f"SELECT CASE WHEN (SELECT count(*) FROM {accounts} WHERE identity = ANY(%s::text[])) <> %s"  # noqa: S608
            " THEN weituan_refuse('accounts_missing') WHEN EXISTS (SELECT 1 FROM unnest(%s::text[],"
            f" %s::bigint[]) AS w (identity, amount) JOIN {accounts} a ON a.identity = w.identity WHERE"
            f" coalesce((SELECT e.balance FROM {entries} e WHERE e.account_id = a.id ORDER BY e.posting_id"
            " DESC LIMIT 1), 0) < w.amount) THEN weituan_refuse('insufficient_balance') END"
        )
        varying = ("id", "buyer_id", "quantity", "gift_quantity", "amount", "client_key")
        fields = list(Order._meta.concrete_fields)
        self.order_constant_fields = [field for field in fields if field.attname not in varying]
        by_name = {field.attname: field for field in fields}
        columns = [quote(str(field.column)) for field in self.order_constant_fields]
        columns += [quote(str(by_name[name].column)) for name in varying]
        values = [f"%s::{field.cast_db_type(db)}" for field in self.order_constant_fields]
        values += [f"v.{name}" for name in varying]
        arrays = ", ".join(f"%s::{by_name[name].cast_db_type(db)}[]" for name in varying)
        self.orders = (
            f"INSERT INTO {orders_table} ({', '.join(columns)}) SELECT {', '.join(values)}"  # noqa: S608
            f" FROM unnest({arrays}) AS v ({', '.join(varying)})"
        )
        self.postings = (
            f"WITH v AS (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[])"  # noqa: S608
            " AS v (order_id, key, wallet, held, amount)),"
            f" p AS (INSERT INTO {quote(Posting._meta.db_table)} (kind, key, order_id, memo, created_at)"
            " SELECT 'authorize', v.key, v.order_id, '', %s::timestamptz FROM v RETURNING id, order_id)"
            f" INSERT INTO {entries} (posting_id, account_id, amount, balance)"
            " SELECT p.id, a.id, CASE WHEN a.kind = 'W' THEN -v.amount ELSE v.amount END,"
            f" CASE WHEN a.kind = 'W' THEN coalesce((SELECT l.balance FROM {entries} l"
            " WHERE l.account_id = a.id ORDER BY l.posting_id DESC LIMIT 1), 0) - v.amount END"
            f" FROM v JOIN p ON p.order_id = v.order_id JOIN {accounts} a ON a.identity IN (v.wallet, v.held)"
        ).replace("'W'", f"'{wallet}'")
        quotas = quote(UserDealQuota._meta.db_table)
        self.stock = (
            "WITH u AS (SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::integer[]) AS u (user_id, own, gifts)),"  # noqa: S608
            f" q AS (INSERT INTO {quotas} (deal_id, user_id, own, gifts) SELECT %s, u.user_id, u.own, u.gifts"
            " FROM u ORDER BY u.user_id ON CONFLICT (deal_id, user_id) DO UPDATE SET"
            f" own = {quotas}.own + excluded.own, gifts = {quotas}.gifts + excluded.gifts"
            f" WHERE {quotas}.own + excluded.own <= %s AND {quotas}.gifts + excluded.gifts <= %s"
            " RETURNING user_id, own + gifts AS held),"
            " f AS (SELECT count(*) AS n FROM q JOIN u ON u.user_id = q.user_id WHERE q.held = u.own + u.gifts),"
            f" d AS (UPDATE {quote(Deal._meta.db_table)} SET sold = sold + %s, takers = takers + (SELECT n FROM f)"
            " WHERE id = %s AND state IN (%s, %s) AND sold + %s <= released RETURNING sold, takers, state)"
            " SELECT CASE WHEN (SELECT count(*) FROM q) <> %s THEN weituan_refuse('per_user_limit')"
            " WHEN d.sold IS NULL THEN weituan_refuse('sold_out') END, d.sold, d.takers, d.state"
            " FROM (SELECT 1) AS one LEFT JOIN d ON true"
        )


_DEAL_ROWS: RowReader[Deal] = RowReader(Deal)
_made: dict[str, _Statements] = {}


def _statements() -> _Statements:
    alias = connections[DEFAULT_DB_ALIAS].alias
    found = _made.get(alias)
    if found is None:
        found = _made[alias] = _Statements()
    return found
