"""The Idempotency-Keys that writes keep with their own change (`WriteKey`): a cancel, a switch to the
solo price, a team merge, a voucher's redemption, a deal's publication.

An idempotency record (`core.idempotency`) is stored apart from the write it answers, after the write
has committed, so a process that dies in between, or an answer lost on its way back (its connection
ended, the response failing after the commit), leaves a write done with no answer kept for it: its
retry would run it again, and a cancel run again is refused `not_cancellable` (a redemption
`already_redeemed`, a publication `already_published`, a merge `team_closed`). The key kept here is
written in the very transaction that makes the change, so it exists exactly when the change does, for
as long as what it answers with does. A retry that finds it is answered with that (the order, the team
merged into, the voucher, the deal) and changes nothing; two retries at once both find it (or the one
that made the change keeps it, and the other, refused by the change already made, finds it then). Its
unique (sender, key) makes a key used meanwhile for another request of its sender, of whatever kind,
roll the change back (`idempotency_mismatch`).
"""

from dataclasses import dataclass

from django.db import IntegrityError, models, transaction

from weituan.core.idempotency import idempotency_mismatch
from weituan.deals.models import Deal, Order, Team, Voucher, WriteKey


@dataclass(frozen=True)
class KeyedRequest:
    """The Idempotency-Key `key` of `sender_id`'s request `request` (`cancel_request`, `solo_request`,
    `merge_request`, `redeem_request`, `publish_request`)."""

    sender_id: int
    key: str
    request: str


def cancel_request(order_id: int) -> str:
    return f"cancel:{order_id}"


def solo_request(order_id: int) -> str:
    return f"solo:{order_id}"


def merge_request(team_id: int, into_id: int) -> str:
    return f"merge:{team_id}:{into_id}"


def redeem_request(code: str) -> str:
    """The redemption of the voucher of `code`, written as `voucher_code_normalize` leaves it."""
    return f"redeem:{code}"


def publish_request(deal_id: int) -> str:
    return f"publish:{deal_id}"


def write_key_of(*, sender_id: int, key: str | None, request: str) -> KeyedRequest | None:
    """The key a write keeps, or None for a request sent without one."""
    return KeyedRequest(sender_id=sender_id, key=key, request=request) if key else None


def write_key_keep(
    *,
    kept: KeyedRequest | None,
    order_id: int | None = None,
    team_id: int | None = None,
    voucher_id: int | None = None,
    deal_id: int | None = None,
) -> None:
    """Keep the key of the request that has just made its change, answered with the one row named (the
    order, the team, the voucher or the deal). Call inside the transaction that made the change: a key
    its sender has used for another request makes the whole change roll back, refused with
    `idempotency_mismatch`."""
    if kept is None:
        return
    try:
        with transaction.atomic():
            WriteKey.objects.create(
                sender_id=kept.sender_id,
                key=kept.key,
                request=kept.request,
                order_id=order_id,
                team_id=team_id,
                voucher_id=voucher_id,
                deal_id=deal_id,
            )
    except IntegrityError:
        raise idempotency_mismatch() from None


def _answer[Answer: models.Model](
    kept: KeyedRequest | None, field: str, rows: models.QuerySet[Answer]
) -> Answer | None:
    """The row of `rows` the request of `kept` is answered with (its `field` on the kept key) if that
    request has already made its change, else None. A key kept for another request of its sender is
    refused."""
    if kept is None:
        return None
    found = (
        WriteKey.objects.filter(sender_id=kept.sender_id, key=kept.key)
        .values_list("request", f"{field}_id")
        .first()
    )
    if found is None:
        return None
    request, answer_id = found
    if request != kept.request:
        raise idempotency_mismatch()
    return rows.get(id=answer_id)


def write_key_order(*, kept: KeyedRequest | None) -> Order | None:
    """The order answering a cancel or a switch to the solo price already made, as `_answer` says."""
    return _answer(kept, "order", Order.objects.select_related("deal", "team"))


def write_key_team(*, kept: KeyedRequest | None) -> Team | None:
    """The team a merge already made moved the team into, as `_answer` says."""
    return _answer(kept, "team", Team.objects.all())


def write_key_voucher(*, kept: KeyedRequest | None) -> Voucher | None:
    """The voucher a redemption already made redeemed, as `_answer` says."""
    return _answer(kept, "voucher", Voucher.objects.select_related("deal", "redeemed_by", "holder"))


def write_key_deal(*, kept: KeyedRequest | None) -> Deal | None:
    """The deal a publication already made published, as `_answer` says."""
    return _answer(kept, "deal", Deal.objects.all())
