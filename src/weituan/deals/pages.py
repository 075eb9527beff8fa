"""The deals lists a page at a time: each in a stable order that ends with the id, paged by the id of an
item (Mastodon's `max_id`, `since_id` and `min_id`), so that walking the pages shows every item once
however many there are, and an item added meanwhile never pushes another onto the next page twice."""

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any, TypedDict

from django.db.models import Model, Q, QuerySet

from weituan.core.ids import MAX_ID
from weituan.deals import queries
from weituan.deals.models import Deal, DealState, Order, Voucher


@dataclass(frozen=True, slots=True)
class Page[T]:
    """One page of a list: its items in the list's order, and the cursors of the pages on either side:
    `newer_id` the `min_id` of the page before it (None when it starts the list), `older_id` the `max_id`
    of the page after it (None when it ends the list)."""

    items: list[T]
    newer_id: int | None = None
    older_id: int | None = None


class PageAsked(TypedDict):
    """The cursors a page of a list is asked for by (None: not given)."""

    max_id: int | None
    min_id: int | None


FIRST_PAGE = PageAsked(max_id=None, min_id=None)


def cursor_of(raw: object) -> int | None:
    """A cursor as a query string gives it: a whole number (one above any id stands for the largest), or
    None for anything else (a page shows the list from its start)."""
    text = str(raw) if raw is not None else ""
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if not text.isascii() or not text.isdecimal():
        return None
    return min(int(text), MAX_ID)


def _beyond(order: tuple[str, ...], values: tuple[Any, ...], *, after: bool) -> Q:
    """The rows after (or before) the row whose values of `order`'s fields are `values`, in that order."""
    conditions = []
    for index, term in enumerate(order):
        name = term.removeprefix("-")
        further = "lt" if term.startswith("-") == after else "gt"
        same = {field.removeprefix("-"): value for field, value in zip(order[:index], values, strict=False)}
        conditions.append(Q(**same, **{f"{name}__{further}": values[index]}))
    return reduce(or_, conditions)


def _values_of(item: Model, order: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(item, term.removeprefix("-")) for term in order)


def _bound[M: Model](
    rows: QuerySet[M], order: tuple[str, ...], cursors: QuerySet[M] | None, cursor: int | None, *, after: bool
) -> Q | None:
    """The rows after (or before) the item `cursor` names; None for no cursor, or one naming no item."""
    if cursor is None:
        return None
    if order in (("-id",), ("id",)):
        return _beyond(order, (cursor,), after=after)
    names = [term.removeprefix("-") for term in order]
    values = (cursors if cursors is not None else rows).filter(id=cursor).values_list(*names).first()
    return _beyond(order, tuple(values), after=after) if values is not None else None


def keyset_page[M: Model](
    rows: QuerySet[M],
    *,
    limit: int,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    order: tuple[str, ...] = ("-id",),
    cursors: QuerySet[M] | None = None,
    neighbours: bool = True,
) -> Page[M]:
    """A page of at most `limit` of `rows` in `order` (fields of the rows, the last one "id" or "-id"):
    with `max_id`, those after that item; with `since_id`, the first ones before it; with `min_id`, the
    ones just before it. A cursor is an item's id: with an order other than by id alone, its place is
    that item's values, read from `cursors` (the rows by default; a wider set keeps a cursor whose item
    left the list, as a deal sold out since, in its place). A cursor naming no item there counts as
    none. `neighbours`: find whether there are items on either side of the page (one query at most
    beyond the page's); without it the cursors are those of the page's first and last items whenever
    it has any, as Mastodon's `Link` header gives them."""
    upper = _bound(rows, order, cursors, max_id, after=True)
    lower = _bound(rows, order, cursors, min_id if min_id is not None else since_id, after=False)
    bounds = [bound for bound in (upper, lower) if bound is not None]
    # Just before `min_id`: read upwards from it, then turned around.
    upwards = min_id is not None and lower is not None
    reading = tuple(term.removeprefix("-") if term.startswith("-") else f"-{term}" for term in order)
    found = list(rows.filter(*bounds).order_by(*(reading if upwards else order))[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    if upwards:
        found.reverse()
    if not found:
        return Page(items=[])
    first, last = found[0], found[-1]
    if not neighbours:
        return Page(items=found, newer_id=first.pk, older_id=last.pk)

    def beyond(item: M, *, after: bool) -> bool:
        return rows.filter(_beyond(order, _values_of(item, order), after=after)).exists()

    paged = bool(bounds)
    if upwards:
        newer = more
        older = beyond(last, after=True)
    else:
        newer = paged and beyond(first, after=False)
        older = more
    return Page(items=found, newer_id=first.pk if newer else None, older_id=last.pk if older else None)


def orders_of_buyer_page(
    *, user: Any, limit: int, max_id: int | None = None, min_id: int | None = None
) -> Page[Order]:
    """The buyer's orders as `queries.orders_of_buyer` gives them (newest first), a page at a time."""
    return keyset_page(queries.orders_of_buyer(user=user), limit=limit, max_id=max_id, min_id=min_id)


def vouchers_of_holder_page(
    *,
    user: Any,
    limit: int,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    neighbours: bool = True,
) -> Page[Voucher]:
    """The holder's vouchers, newest first, a page at a time."""
    return keyset_page(
        queries.vouchers_of_holder(user=user),
        limit=limit,
        max_id=max_id,
        since_id=since_id,
        min_id=min_id,
        neighbours=neighbours,
    )


def orders_of_deal_page(
    *, deal: Deal, limit: int, max_id: int | None = None, min_id: int | None = None
) -> Page[Order]:
    """The orders of the merchant's deal, newest first, a page at a time."""
    return keyset_page(queries.orders_of_deal(deal=deal), limit=limit, max_id=max_id, min_id=min_id)


def redemptions_of_merchant_page(
    *, merchant: Any, limit: int, max_id: int | None = None, min_id: int | None = None
) -> Page[Voucher]:
    """The vouchers of the merchant's deals that were redeemed, the latest redemption first (vouchers
    redeemed at the same moment by id), a page at a time; a cursor is a voucher's id."""
    return keyset_page(
        queries.redemptions_of_merchant(merchant=merchant),
        limit=limit,
        max_id=max_id,
        min_id=min_id,
        order=("-redeemed_at", "-id"),
    )


def deals_on_sale_page(*, limit: int, max_id: int | None = None, min_id: int | None = None) -> Page[Deal]:
    """The deals on sale, the one ending soonest first (deals ending at the same moment by id), a page at
    a time. A cursor is a deal's id: one that has stopped selling since keeps its place."""
    return keyset_page(
        queries.deals_on_sale(),
        limit=limit,
        max_id=max_id,
        min_id=min_id,
        order=("ends_at", "id"),
        cursors=Deal.objects.exclude(state=DealState.DRAFT),
    )
