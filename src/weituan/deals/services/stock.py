"""Taking and returning stock and per-buyer quota: conditional UPDATEs, with Redis Lua as a gate in front.

The database is the record and the final guard: `sold` moves only by
`UPDATE deal SET sold = sold + q WHERE id = ? AND state IN (live, tipped) AND sold + q <= released`,
and a buyer's quota by the same kind of UPDATE. The deal's UPDATE also moves `takers` (the buyers
holding units) when the buyer's quota goes from nothing to something or back; the quota's row is
updated first, so that is decided under its lock, and two orders of one buyer (or an order and a void)
never both count them, nor both let them go.

When REDIS_URL is set, a Lua script first takes the units (stock and the buyer's quota, atomically) in
Redis, so the flood of attempts after a sell-out is refused there without touching the database.
Reconciliation:

- every database refusal or rollback after a Redis take gives the units back in Redis;
- a process that dies between the two leaves Redis showing fewer units than the database, which can
  only under-sell, never over-sell; `stock_gate_reconcile` rewrites the Redis counters from the
  database when a flash batch is released;
- the Redis counters are created from the database on first use, so a flushed Redis heals itself: by
  one process at a time, while the other buyers wait for it (`stock_rebuild`);
- a sold-out deal selling again (`deal_selling_again`) has the gate show at least the units the
  database has free (`stock_gate_catch_up`), so a freed unit is never held back by the gate;
- a take raises the gate's units released to the database's as the buyer's request read them, so a
  flash batch released while Redis could not be reached goes on sale in the gate with the first take.

While Redis cannot be reached a take raises (the order is answered 503 `unavailable`, nothing taken),
but what only gives units back or rewrites the gate (a cancel, a void, an expiry, a batch released,
the sweep) goes on without it: the gate then shows fewer units free than the database, which the
steps above bring back, and never more.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from weituan.core.redis import (
    REDIS_UNREACHABLE,
    get_redis,
    redis_enabled,
    rkey,
    scripts_run,
    unreachable_logged,
)
from weituan.core.states import advance
from weituan.deals.errors import DealNotSelling, LimitReached, SoldOut
from weituan.deals.models import DEAL_GRAPH, Deal, DealState, UserDealQuota
from weituan.deals.models.deals import SELLING_STATES
from weituan.deals.queries import flash_batch_next
from weituan.deals.services.rows import StatementBatch
from weituan.deals.services.stock_rebuild import stock_gate_rebuild

logger = logging.getLogger(__name__)

# KEYS: stock hash, quota hash. ARGV: user id, own units, gift units, own limit, gift limit, units
# released in the database (as the request read the deal: released only grows, so the gate's is raised
# to it, never lowered). Returns 1 when taken; 0 when the stock hash is missing; -1 sold out; -2 own
# limit; -3 gift limit.
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local q = tonumber(ARGV[2]) + tonumber(ARGV[3])
local released = tonumber(redis.call('HGET', KEYS[1], 'released'))
if released < tonumber(ARGV[6]) then
  released = tonumber(ARGV[6])
  redis.call('HSET', KEYS[1], 'released', released)
end
local sold = tonumber(redis.call('HGET', KEYS[1], 'sold'))
if sold + q > released then return -1 end
local own = tonumber(redis.call('HGET', KEYS[2], 'o:' .. ARGV[1]) or '0')
local gifts = tonumber(redis.call('HGET', KEYS[2], 'g:' .. ARGV[1]) or '0')
if own + tonumber(ARGV[2]) > tonumber(ARGV[4]) then return -2 end
if gifts + tonumber(ARGV[3]) > tonumber(ARGV[5]) then return -3 end
redis.call('HINCRBY', KEYS[1], 'sold', q)
redis.call('HINCRBY', KEYS[2], 'o:' .. ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'g:' .. ARGV[1], ARGV[3])
return 1
"""
# Lua's unary minus turns 0 into "-0", which HINCRBY refuses; hence `0 - x`.
_GIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'sold', 0 - (tonumber(ARGV[2]) + tonumber(ARGV[3])))
redis.call('HINCRBY', KEYS[2], 'o:' .. ARGV[1], 0 - tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[2], 'g:' .. ARGV[1], 0 - tonumber(ARGV[3]))
return 1
"""

# KEYS: stock hash. ARGV: units sold and released in the database. Only ever shows more units free:
# `sold` lowered to the database's, `released` raised to it. Returns 0 when the hash is missing.
_CATCH_UP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'sold')) > tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'sold', ARGV[1])
end
if tonumber(redis.call('HGET', KEYS[1], 'released')) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'released', ARGV[2])
end
return 1
"""

# KEYS: quota hash. ARGV: user id, own and gift units the database records the buyer holding. Only
# ever lowers the gate's counts; returns 1 when it lowered one.
_QUOTA_CATCH_UP = """
local lowered = 0
for _, kind in ipairs({'o', 'g'}) do
  local field = kind .. ':' .. ARGV[1]
  local held = tonumber(kind == 'o' and ARGV[2] or ARGV[3])
  if tonumber(redis.call('HGET', KEYS[1], field) or '0') > held then
    redis.call('HSET', KEYS[1], field, held)
    lowered = 1
  end
end
return lowered
"""

# KEYS: stock hashes. ARGV: per key, the units sold and released in the database. A gate that shows no
# unit left while the database has some is brought to the database's counts; returns how many were.
_UNSTICK = """
local unstuck = 0
for index, key in ipairs(KEYS) do
  local sold, released = tonumber(ARGV[2 * index - 1]), tonumber(ARGV[2 * index])
  if redis.call('EXISTS', key) == 1 and sold < released then
    local gate_sold = tonumber(redis.call('HGET', key, 'sold'))
    local gate_released = tonumber(redis.call('HGET', key, 'released'))
    if gate_sold >= gate_released then
      redis.call('HSET', key, 'sold', math.min(gate_sold, sold), 'released', math.max(gate_released, released))
      unstuck = unstuck + 1
    end
  end
end
return unstuck
"""

_scripts: dict[tuple[int, str], Any] = {}


def _run(source: str, keys: list[str], *args: int) -> int:
    """Run a Lua script by its SHA (EVALSHA; loaded again when the server lost it), not by sending its
    text each time, on a pooled connection directly (`scripts_run`: the client's command path cost
    more than the round trip). A connection that drops mid-call is retried once, as the client's own
    retries would: a take run twice holds back units in Redis, which can only under-sell until the
    next reconciliation, never over-sell."""
    return int(scripts_run([(_script(source), keys, args)])[0])


def _script(source: str) -> Any:
    """The script of `source` registered with this process's Redis client."""
    client = get_redis()
    script = _scripts.get((id(client), source))
    if script is None:
        script = _scripts[(id(client), source)] = client.register_script(source)
    return script


def _keys(deal_id: int) -> list[str]:
    return [rkey("deal", deal_id, "stock"), rkey("deal", deal_id, "quota")]


def stock_gate_take(*, deal: Deal, user_id: int, own: int, gifts: int) -> bool:
    """Take the units in Redis; False when Redis is not configured. Raises the refusal otherwise.

    A refusal for the buyer's limit is checked against the database's record of what they hold (one
    indexed read; such refusals are few, unlike the flood of sold-out ones): a process stopped between
    its take in Redis and its order left the gate counting units this buyer never got, and they would
    be refused for good. Their counts in the gate are then lowered to the database's and the take is
    tried once more (the database's own guard decides, as for any take the gate lets through).

    A gate found missing is rebuilt from the database by one buyer while the others wait for it
    (`stock_gate_rebuild`), then taken from; one still missing after that (or after the wait) is gone
    past: False, and the database's conditional UPDATE alone decides."""
    if not redis_enabled():
        return False
    args = [user_id, own, gifts, deal.per_user_limit, deal.gift_limit, deal.released]
    rebuilt = quota_checked = False
    while True:
        result = _run(_TAKE, _keys(deal.id), *args)
        if result == 1:
            return True
        if result == -1:
            raise sold_out(deal)
        if result in (-2, -3):
            if quota_checked or not _quota_catch_up(deal_id=deal.id, user_id=user_id):
                raise _limit_error(deal)
            quota_checked = True
            continue
        if rebuilt or not stock_gate_rebuild(deal_id=deal.id):
            return False
        rebuilt = True


def stock_gate_take_many(*, deal: Deal, takes: list[tuple[int, int, int]]) -> list[bool]:
    """Take each (user id, own units, gift units) in Redis, in order, in one round trip; whether each
    was taken. A refused or missing take is only reported: its order is then placed (or refused) the
    per-order way, through `stock_gate_take`, which checks a refused limit against the database. A
    missing gate is rebuilt from the database first (`stock_gate_rebuild`) and its takes tried once
    more. A failure part of the way gives back what was taken before it is raised."""
    script = _script(_TAKE)
    keys = _keys(deal.id)
    limits = (deal.per_user_limit, deal.gift_limit, deal.released)
    calls = [(script, keys, (user_id, own, gifts, *limits)) for user_id, own, gifts in takes]
    replies = [_taken_reply(reply) for reply in scripts_run(calls, errors=True)]
    try:
        failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failed is not None:
            raise failed
        missing = [index for index, reply in enumerate(replies) if reply == 0]
        if missing and stock_gate_rebuild(deal_id=deal.id):
            again = scripts_run([calls[index] for index in missing])
            for index, reply in zip(missing, again, strict=True):
                replies[index] = int(reply)
    except BaseException:
        stock_gate_give_many(
            deal_id=deal.id, gives=[take for take, reply in zip(takes, replies, strict=True) if reply == 1]
        )
        raise
    return [reply == 1 for reply in replies]


def _taken_reply(reply: Any) -> Any:
    return reply if isinstance(reply, Exception) else int(reply)


def stock_gate_give_many(*, deal_id: int, gives: list[tuple[int, int, int]]) -> None:
    """`stock_gate_give` for each (user id, own units, gift units), in one round trip."""
    if not redis_enabled() or not gives:
        return
    script = _script(_GIVE)
    keys = _keys(deal_id)
    try:
        scripts_run([(script, keys, give) for give in gives])
    except REDIS_UNREACHABLE as exc:
        unreachable_logged(logger, "units given back left to the stock gate's reconciliation", exc)


def _quota_catch_up(*, deal_id: int, user_id: int) -> bool:
    """Lower the buyer's counts in the gate to what the database records them holding, where the gate
    counts more; True when it did."""
    held = UserDealQuota.objects.filter(deal_id=deal_id, user_id=user_id).values_list("own", "gifts").first()
    own, gifts = held or (0, 0)
    return bool(_run(_QUOTA_CATCH_UP, _keys(deal_id)[1:], user_id, own, gifts))


def stock_gate_give(*, deal_id: int, user_id: int, own: int, gifts: int) -> None:
    """Give units (and the buyer's quota) back in Redis. While Redis cannot be reached this is
    skipped, not raised: the units are back in the database whatever the gate says, so a cancel, a
    void or a refused order is not failed for it. The gate then counts units nobody holds, which only
    holds them back: the buyer's own are checked against the database when the gate refuses them
    (`stock_gate_take`), the deal's last ones are freed by the sweep (`stock_gates_unstick`), and a
    Redis that comes back empty is rebuilt from the database."""
    if not redis_enabled():
        return
    try:
        _run(_GIVE, _keys(deal_id), user_id, own, gifts)
    except REDIS_UNREACHABLE as exc:
        unreachable_logged(logger, "units given back left to the stock gate's reconciliation", exc)


def stock_gate_reconcile(*, deal_id: int) -> None:
    """Rewrite the Redis counters of a deal from the database record. Raises while Redis cannot be
    reached (see `stock_gate_reconcile_if_reachable`)."""
    if not redis_enabled():
        return
    deal = Deal.objects.filter(id=deal_id).values("released", "sold").first()
    if deal is None:
        return
    stock_key, quota_key = _keys(deal_id)
    quota: dict[str, int] = {}
    for row in UserDealQuota.objects.filter(deal_id=deal_id).values("user_id", "own", "gifts"):
        quota[f"o:{row['user_id']}"] = row["own"]
        quota[f"g:{row['user_id']}"] = row["gifts"]
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(stock_key, quota_key)
    pipe.hset(stock_key, mapping={"released": deal["released"], "sold": deal["sold"]})
    if quota:
        pipe.hset(quota_key, mapping=quota)  # type: ignore[arg-type]
    pipe.execute()


def stock_gate_reconcile_if_reachable(*, deal_id: int) -> None:
    """`stock_gate_reconcile`, skipped while Redis cannot be reached: for a flash batch going on sale,
    which the database records whatever Redis answers. The gate, showing fewer units released than the
    database, takes the database's count with the first take once Redis answers again, or is rebuilt
    from it if Redis comes back empty."""
    try:
        stock_gate_reconcile(deal_id=deal_id)
    except REDIS_UNREACHABLE as exc:
        unreachable_logged(logger, "flash batches released in the database only", exc)


def stock_gate_catch_up(*, deal_id: int) -> None:
    """Let the Redis gate show at least the units the database has free: its count of units sold is
    lowered to the database's, and its units released raised to it, where the gate shows fewer units
    free (never the other way round, and the buyers' quotas are left as they are).

    Run once a deal is selling again: a gate that counts more units taken than the database (a process
    stopped between its take in Redis and its order) would otherwise keep a freed unit from every buyer.
    It only ever lets more attempts reach the database's own guard. A full rewrite from the database
    (`stock_gate_reconcile`) would not do here: run while another release of the deal is still
    uncommitted (its unit already given back in Redis, still taken in the database), it would count
    that unit as taken again, and the gate would hold it back once that release commits."""
    if not redis_enabled():
        return
    deal = Deal.objects.filter(id=deal_id).values("sold", "released").first()
    if deal is not None:
        _run(_CATCH_UP, _keys(deal_id)[:1], deal["sold"], deal["released"])


def stock_gates_unstick(*, now: datetime | None = None) -> int:
    """Let every deal on sale whose Redis gate shows no unit left while the database has some sell
    again (the deals sweep runs this); returns how many gates were brought down to the database.

    A process stopped between its take in Redis and its order (a kill, a crash, a restart mid-sale)
    leaves the gate counting units nobody bought; at the deal's last units the gate then refuses every
    buyer as sold out while the deal, in the database, still sells. Only such gates are touched, and
    only lowered, as `stock_gate_catch_up` lowers them: a take still on its way to the database when
    this runs may let a few more attempts reach the database's own guard, never past it.

    While Redis cannot be reached there is nothing to unstick (no order gets through the gate): 0, and
    the sweep goes on with the rest of its work."""
    if not redis_enabled():
        return 0
    try:
        return _gates_unstick(now=now)
    except REDIS_UNREACHABLE as exc:
        unreachable_logged(logger, "stock gates not checked by the deals sweep", exc)
        return 0


def _gates_unstick(*, now: datetime | None) -> int:
    now = now or timezone.now()
    rows = list(
        Deal.objects.filter(state__in=SELLING_STATES, sold__lt=F("released"), ends_at__gt=now)
        .order_by("id")
        .values_list("id", "sold", "released")
    )
    unstuck = 0
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        keys = [_keys(deal_id)[0] for deal_id, _, _ in chunk]
        args = [count for _, sold, released in chunk for count in (sold, released)]
        unstuck += _run(_UNSTICK, keys, *args)
    return unstuck


def _limit_error(deal: Deal) -> LimitReached:
    return LimitReached(
        f"You may buy {deal.per_user_limit} of this deal"
        + (f" and {deal.gift_limit} more as gifts" if deal.gift_limit else ""),
        per_user_limit=deal.per_user_limit,
        gift_limit=deal.gift_limit,
    )


class Taken(NamedTuple):
    """The deal just after an order took its units: units sold, buyers holding units, its state."""

    sold: int
    takers: int
    state: str


def stock_take(*, deal: Deal, user_id: int, own: int, gifts: int) -> Taken:
    """Take `own + gifts` units and the buyer's quota; returns the deal as the take left it.

    An upsert of the buyer's quota row that only moves while it stays within the limits, then the
    conditional UPDATE of the deal's `sold` and `takers` (two statements; on PostgreSQL one). Call inside
    the order's transaction, as its last writes: on PostgreSQL the deal row stays locked from this UPDATE
    to the commit, so every order of the deal waits only for that short tail of the others. A refusal
    raised here rolls back everything the transaction did.
    """
    if own > deal.per_user_limit or gifts > deal.gift_limit:
        raise _limit_error(deal)
    if connection.vendor == "postgresql":
        batch = StatementBatch()
        taken = stock_take_send(batch, deal=deal, user_id=user_id, own=own, gifts=gifts)
        batch.send()
        return taken()
    with connection.cursor() as cursor:
        cursor.execute(*_quota_statement(deal, user_id, own, gifts))
        quota = cursor.fetchone()
        if quota is None:
            raise _limit_error(deal)
        # The buyer's first units (or first again, after everything they took was given back).
        first = quota[0] + quota[1] == own + gifts
        cursor.execute(*_stock_statement(deal, own + gifts, first=first))
        row = cursor.fetchone()
    return _taken(deal, row)


def stock_take_send(
    batch: StatementBatch, *, deal: Deal, user_id: int, own: int, gifts: int, refuse_in_sql: bool = False
) -> Callable[[], Taken]:
    """PostgreSQL: `stock_take` as one statement, added to `batch`; the returned call reads its answer
    once sent and raises the refusal, if any (the limits are checked there too, so a caller sending
    its statements as one batch refuses in the same order as `stock_take`). Call inside the order's
    transaction.

    With `refuse_in_sql` the statement itself refuses, through `weituan_refuse('per_user_limit')` or
    `weituan_refuse('sold_out')` (see `stock_refusal`), so that nothing after it in the batch runs.
    """
    quota_sql, quota_params = _quota_statement(deal, user_id, own, gifts)
    stock_sql, stock_params = _stock_statement(deal, own + gifts)
    over_limit = own > deal.per_user_limit or gifts > deal.gift_limit
    if refuse_in_sql:
        verdict = (
            "CASE WHEN %s OR (SELECT count(*) FROM q) = 0 THEN weituan_refuse('per_user_limit')"
            " WHEN d.sold IS NULL THEN weituan_refuse('sold_out') END"
        )
        verdict_params: list[Any] = [over_limit]
    else:
        verdict, verdict_params = "(SELECT count(*) FROM q)", []
    # Both in one statement: the quota's verdict and the stock's row, if any. A refusal of either
    # rolls back the other with the transaction.
    sent = batch.add(
        f"WITH q AS ({quota_sql}), d AS ({stock_sql})"  # noqa: S608
        f" SELECT {verdict}, d.sold, d.takers, d.state FROM (SELECT 1) AS one LEFT JOIN d ON true",
        quota_params + stock_params + verdict_params,
    )

    def answer() -> Taken:
        quota_ok, *stock = sent().rows[0]
        if over_limit or not (refuse_in_sql or quota_ok):
            raise _limit_error(deal)
        return _taken(deal, tuple(stock) if stock[0] is not None else None)

    return answer


def sold_out(deal: Deal, *, units_left: int = 0) -> SoldOut:
    """The refusal of a deal with no units on sale, or with `units_left`, fewer than the buyer asked for
    (said with their number, so the buyer may take those). A flash sale between batches says when the
    next goes on sale and how many it brings (`next_batch_at`, `next_batch_quantity`): the buyer may come
    back. Before its first batch nothing was sold out: the refusal says the sale has not started, with
    the same code and facts (the first batch's), so a client acting on them goes on working."""
    if units_left > 0:
        unit = "unit of this deal is" if units_left == 1 else "units of this deal are"
        return SoldOut(f"Only {units_left} {unit} left", units_left=units_left)
    batch = flash_batch_next(deal_id=deal.id) if deal.flash_sale else None
    if batch is None:
        return SoldOut("This deal has no units left")
    at = batch.release_at.isoformat()
    if batch.opens_sale:  # type: ignore[attr-defined]
        message = f"This sale has not started; its first batch of {batch.quantity} goes on sale at {at}"
    else:
        message = f"This batch is sold out; the next batch of {batch.quantity} goes on sale at {at}"
    return SoldOut(message, next_batch_at=at, next_batch_quantity=batch.quantity)


def stock_refusal(deal: Deal, reason: str) -> Exception | None:
    """The error for a refusal `stock_take_send(refuse_in_sql=True)` made; None for another reason."""
    if reason == "per_user_limit":
        return _limit_error(deal)
    if reason == "sold_out":
        try:
            _taken(deal, None)
        except (DealNotSelling, SoldOut) as refusal:
            return refusal
    return None


def _quota_statement(deal: Deal, user_id: int, own: int, gifts: int) -> tuple[str, list[Any]]:
    """The upsert of the buyer's quota, returning what it holds now (no row when over a limit)."""
    quota_table = UserDealQuota._meta.db_table
    # A repeat order meets the conflict and moves the row only while it stays within both limits (no
    # row comes back when it would not); a first order inserts it, already checked by the caller.
    quota_sql = (
        f"INSERT INTO {quota_table} (deal_id, user_id, own, gifts) VALUES (%s, %s, %s, %s)"  # noqa: S608
        f" ON CONFLICT (deal_id, user_id) DO UPDATE SET own = {quota_table}.own + excluded.own,"
        f" gifts = {quota_table}.gifts + excluded.gifts"
        f" WHERE {quota_table}.own + excluded.own <= %s AND {quota_table}.gifts + excluded.gifts <= %s"
        " RETURNING own, gifts"
    )
    return quota_sql, [deal.id, user_id, own, gifts, deal.per_user_limit, deal.gift_limit]


def _stock_statement(deal: Deal, units: int, *, first: bool | None = None) -> tuple[str, list[Any]]:
    """The conditional UPDATE of the deal's `sold` (and `takers`, when these are the buyer's first
    units), returning the deal as it leaves it (no row when refused). Whether they are the buyer's
    first is `first`, read from the quota's answer; None when both go as one statement, which reads it
    from the quota's RETURNING (the quota statement as `q`)."""
    if first is None:
        counted, counted_params = "(SELECT count(*) FROM q WHERE q.own + q.gifts = %s)", [units]
    else:
        counted, counted_params = "%s", [int(first)]
    stock_sql = (
        f"UPDATE {Deal._meta.db_table} SET sold = sold + %s, takers = takers + {counted}"  # noqa: S608
        " WHERE id = %s AND state IN (%s, %s) AND sold + %s <= released RETURNING sold, takers, state"
    )
    return stock_sql, [units, *counted_params, deal.id, *SELLING_STATES, units]


def _taken(deal: Deal, row: Any) -> Taken:
    if row is None:
        current = Deal.objects.filter(id=deal.id).values_list("state", flat=True).first()
        if current not in SELLING_STATES and current != DealState.SOLD_OUT:
            raise DealNotSelling(f"This deal is {current}, not on sale")
        raise sold_out(deal)
    return Taken(sold=int(row[0]), takers=int(row[1]), state=str(row[2]))


def stock_return(*, deal_id: int, user_id: int, own: int, gifts: int) -> None:
    """Give units back (a voided hold, an expired reservation). Call inside the transaction that ends them.

    The buyer's quota row first, as an order takes it: whether it now holds nothing (the buyer is no
    longer a taker) is decided under its lock, so a concurrent order of the same buyer counts them
    again only after this one is done. A sold-out deal the units come back to sells again
    (`deal_selling_again`), in the same transaction and under the deal row's lock its `sold` took.
    """
    quota_table = UserDealQuota._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quota_table} SET own = own - %s, gifts = gifts - %s"  # noqa: S608
            " WHERE deal_id = %s AND user_id = %s RETURNING own + gifts",
            [own, gifts, deal_id, user_id],
        )
        left = cursor.fetchone()
    emptied = int(left is not None and left[0] == 0)
    Deal.objects.filter(id=deal_id).update(sold=F("sold") - (own + gifts), takers=F("takers") - emptied)
    # Given back at once rather than on commit: if this transaction rolls back, Redis shows fewer units
    # taken than the database, which only lets a few more attempts reach the database's own guard.
    stock_gate_give(deal_id=deal_id, user_id=user_id, own=own, gifts=gifts)
    deal_selling_again(deal_id=deal_id)


def deal_selling_again(*, deal_id: int, now: datetime | None = None) -> bool:
    """Put a sold-out deal back on sale once units came back to it (`sold` below `released`) while its
    window is still open (at `now`, the present by default): sold out -> tipped (a deal sells out only
    once it has tipped), so that the next buyer takes the freed unit and is paid at once. Returns
    whether this call moved it; a deal that is not sold out, still has every unit taken, or whose window
    has ended (it closes) is left as it is.

    One conditional UPDATE of the deal's row, so it is idempotent and safe to run again: inside the
    transaction that gave the units back (`stock_return`, which already holds the row's lock as the
    last of the lock order, so no other lock is taken), and from the deal sweep for a deal left sold
    out with units back. Once the move commits, the Redis gate is made to show at least the units the
    database has free (`stock_gate_catch_up`), so that it lets the next buyer in."""
    now = now or timezone.now()
    moved = advance(
        DEAL_GRAPH,
        Deal.objects.filter(id=deal_id, state=DealState.SOLD_OUT, sold__lt=F("released"), ends_at__gt=now),
        DealState.TIPPED,
    )
    if moved:
        # Robust: the release has committed whatever Redis answers; a gate left behind only under-sells.
        transaction.on_commit(lambda: stock_gate_catch_up(deal_id=deal_id), robust=True)
    return bool(moved)
