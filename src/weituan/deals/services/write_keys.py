"""The Idempotency-Keys that order writes keep on their own rows (`OrderWriteKey`): a cancel, a switch to
the solo price.

An idempotency record (`core.idempotency`) is stored apart from the write it answers, after the write
has committed, so a process that dies in between, or an answer lost on its way back (its connection
ended, the response failing after the commit), leaves a write done with no answer kept for it: its
retry would run it again, and a cancel run again is refused `not_cancellable`. The key kept here is
written in the very transaction that changes the order, so it exists exactly when the change does, for
as long as the order does. A retry that finds it is answered with the order and changes nothing; two
retries at once both find it (or the one that changed the order keeps it, and the other finds it once
its own attempt changed nothing). Its unique (sender, key) makes a key used meanwhile for another
request of its sender roll the change back (`idempotency_mismatch`).
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from weituan.core.idempotency import idempotency_mismatch
from weituan.deals.models import Order, OrderWriteKey


@dataclass(frozen=True)
class WriteKey:
    """The Idempotency-Key `key` of `sender_id`'s request `request` (`cancel_request`, `solo_request`)."""

    sender_id: int
    key: str
    request: str


def cancel_request(order_id: int) -> str:
    return f"cancel:{order_id}"


def solo_request(order_id: int) -> str:
    return f"solo:{order_id}"


def write_key_of(*, sender_id: int, key: str | None, request: str) -> WriteKey | None:
    """The key a write keeps, or None for a request sent without one."""
    return WriteKey(sender_id=sender_id, key=key, request=request) if key else None


def write_key_keep(*, kept: WriteKey | None, order_id: int) -> None:
    """Keep the key of the request that has just changed an order, answered with order `order_id`. Call
    inside the transaction that made the change: a key its sender has used for another request makes
    the whole change roll back, refused with `idempotency_mismatch`."""
    if kept is None:
        return
    try:
        with transaction.atomic():
            OrderWriteKey.objects.create(
                sender_id=kept.sender_id, key=kept.key, request=kept.request, order_id=order_id
            )
    except IntegrityError:
        raise idempotency_mismatch() from None


def write_key_order(*, kept: WriteKey | None) -> Order | None:
    """The order answering the request of `kept` if that request has already changed it (the key is
    kept for it), else None. A key kept for another request of its sender is refused."""
    if kept is None:
        return None
    found = (
        OrderWriteKey.objects.filter(sender_id=kept.sender_id, key=kept.key)
        .values_list("request", "order_id")
        .first()
    )
    if found is None:
        return None
    request, order_id = found
    if request != kept.request:
        raise idempotency_mismatch()
    return Order.objects.select_related("deal", "team").get(id=order_id)
