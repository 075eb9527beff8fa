"""The deal row's locks that make the tip decision atomic against buyers leaving the count.

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

On SQLite the write transaction is the lock: every transaction starts with BEGIN IMMEDIATE (the
database's `transaction_mode`), so one writes at a time and both only read the deal.

The expiry of a reservation and a refund need neither: a reservation is not paid yet, so it is not
counted (its hold, if granted, moves it by a conditional UPDATE the expiry cannot also make); a
refund ends a paid order, and an order is paid only once its deal has tipped, which is never undone.
"""

from django.db import connection

from weituan.deals.models import Deal


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
