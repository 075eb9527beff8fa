"""The row locks of deals, teams and orders: the deal's locks that make the tip decision atomic against
buyers leaving the count, and the one order every path takes its rows in.

A deal tips on the buyers counted towards its tipping point (`deal_buyers_counted`). The tip check
counts them and moves the deal to tipped in one transaction holding `deal_lock_for_tip`; every change
that can take a buyer out of that count, the release of a held order (`order_void`: the buyer
cancelling, their team expiring, the deal failing, the provider's webhook), holds
`deal_lock_for_release` from before it changes the order until it commits. So the count a deal tips
on is never one a release has already made stale, and a release sees the deal as tipped or not before
it decides (a tipped deal owes its counted orders their capture: those are not released).

On PostgreSQL these are row locks of the deal. The tip check's FOR UPDATE waits for every release in
flight and holds new ones back until its decision commits (it also waits for the checkouts in flight
and holds new ones back, for its few statements, only when the deal is about to tip). A release's FOR KEY SHARE conflicts
with that and nothing else: not with the UPDATE every checkout makes of the deal's `sold` (FOR NO KEY
UPDATE), so a release neither waits for checkouts nor holds them up, and can take the deal's row
before the buyer's wallet, which a checkout takes before the deal's, without a deadlock. Releases do
not wait for one another either.

Lock order. A transaction that locks several of these rows takes them in this order, so that two of them
never wait for each other:

1. the deal's release lock (FOR KEY SHARE), by the paths that take a buyer out of its count;
2. the team's row (`order_team_lock` before an order of the team changes; a join's UPDATE of its
   members; a merge takes both teams, by id);
3. the order's row;
4. the buyer's wallet (the ledger locks a wallet before writing its entries);
5. last, the buyer's quota and then the deal's `sold` and `takers` (its FOR NO KEY UPDATE), the last
   writes of a checkout, a join and a release alike, held only until the commit. A release that frees
   a unit of a sold-out deal moves it back to tipped there too (`deal_selling_again`), by a second
   UPDATE of the row it already holds: no lock is added, and a checkout waiting on that row sees the
   deal selling once the release commits.

A checkout (the batch included) takes only 4 and 5; a join 2, 4 and 5 (the deal's FOR KEY SHARE its new
order's foreign key takes after the team conflicts only with the tip check, which holds nothing else);
a merge 2 and 3; a switch to the solo price 2, 3 and 4; the release of a hold all of them (a hosted
provider's hold no wallet). Were a release to move the deal's `sold` before the team's `members`, as a
join does the other way round, a release and a join of one team could each wait for the other; were it
to take the order's row before the team's, so could a release and a merge (its teams, then their
orders).

On SQLite the write transaction is the lock: every transaction starts with BEGIN IMMEDIATE (the
database's `transaction_mode`), so one writes at a time and both only read the deal.

The expiry of a reservation and a refund need no deal lock: a reservation is not paid yet, so it is not
counted (its hold, if granted, moves it by a conditional UPDATE the expiry cannot also make); a
refund ends a paid order, and an order is paid only once its deal has tipped, which is never undone.
The expiry of a team member's reservation still takes the team's row before the order's.
"""

from django.db import connection
from django.db.models import Subquery

from weituan.deals.models import Deal, Order, Team


def deal_lock_for_tip(*, deal_id: int) -> Deal | None:
    """The deal, locked against every release of a hold until the transaction ends; call inside it,
    then count its buyers."""
    return Deal.objects.select_for_update().filter(id=deal_id).first()


def deal_lock_for_release(*, deal_id: int) -> str | None:
    """The deal's state, held against a tip check until the transaction ends (a tip check holding the
    row is waited for, and the state read after it). Call inside the transaction that releases a
    hold, before the order changes."""
    if connection.vendor != "postgresql":
        return Deal.objects.filter(id=deal_id).values_list("state", flat=True).first()
    table = connection.ops.quote_name(Deal._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state FROM {table} WHERE id = %s FOR KEY SHARE", [deal_id])  # noqa: S608
        found = cursor.fetchone()
    return None if found is None else str(found[0])


def order_team_lock(*, order_id: int) -> int | None:
    """The id of the order's team, its row locked until the transaction ends (FOR NO KEY UPDATE, as the
    UPDATE of its members takes it); None for an order outside a team. Call inside the transaction
    that ends the order's hold or reservation, after the deal's lock and before the order changes.

    A merge that moved the order to another team before this lock was granted is followed: that team is
    locked too (a merged team is never locked by a merge again, so holding it blocks nobody)."""
    team_of_order = Order.objects.filter(id=order_id).values("team_id")
    locking = Team.objects.select_for_update(no_key=True)
    team_id = locking.filter(id=Subquery(team_of_order[:1])).values_list("id", flat=True).first()
    while team_id is not None:
        now = team_of_order.values_list("team_id", flat=True).first()
        if now is None or now == team_id:
            break
        team_id = locking.filter(id=now).values_list("id", flat=True).first()
    return team_id
