"""Where deals meet the micro-blog (the deal card post) and tracking (business events through its outbox)."""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from weituan.core.errors import ServiceError
from weituan.core.money import Money
from weituan.deals.models import Deal, DealState, Order, Voucher

logger = logging.getLogger(__name__)

TITLE_IN_POST = 40  # characters; keeps the announcement well inside the weighted post length


# A deal on sale, or about to be, is announced; one that ended (closed, failed, sold out) never is.
ANNOUNCED_STATES = (DealState.SCHEDULED, DealState.LIVE, DealState.TIPPED)


def deal_card_post_create(*, deal: Deal) -> int | None:
    """Announce a published deal on the merchant's micro-blog, once; the post carries the live deal card.

    Returns the deal's post, made now or before; None when there is none: the deal ended before it was
    announced, or the post could not be made (a rate limit, say). Publishing has already committed, so
    such a failure leaves the deal published and unannounced rather than undoing it; the deal sweep
    (`deals_announce_owed`) tries it again. See `deal_announce` for how two tries never make two posts.
    """
    made = deal_announce(deal=deal)
    return made if made is not None else deal.post_id


def deal_announce(*, deal: Deal) -> int | None:
    """Post the deal card unless the deal has its post already: the id of the post made by this call,
    else None (posted before, ended, or refused: logged, and left for a later sweep).

    Decided under the deal's row lock, the post written in the same transaction as the deal's
    `post_id`: the announcement after publishing, a retried publish and the sweeps of several processes
    may all try at once, and the one that waited finds the post made. On SQLite the transaction is
    IMMEDIATE, so its BEGIN is the lock. It deliberately does not queue on `sqlite_writer`: the post's
    fan-out, enqueued on commit, may run right away and queue there itself before the queue is released.
    """
    from weituan.microblog.services.posts import post_create

    if deal.post_id:
        return None
    text = _card_text(deal)
    try:
        with transaction.atomic():
            locked = Deal.objects.select_for_update().filter(id=deal.id).values_list("state", "post_id")
            state, deal.post_id = locked.get()
            if deal.post_id or state not in ANNOUNCED_STATES:
                return None
            post = post_create(author=deal.merchant, text=text, deal_id=deal.id)
            Deal.objects.filter(id=deal.id).update(post_id=post.id)
    except ServiceError as exc:
        logger.warning("deal %s published without its post: %s", deal.id, exc.message)
        return None
    deal.post_id = post.id
    return post.id


def deals_announce_owed(*, now: datetime) -> int:
    """Announce every deal on sale or about to be (still in its window) that has no post yet, such as
    one whose process stopped between publishing and posting, or whose post was refused; how many were
    announced."""
    owed = Deal.objects.filter(state__in=ANNOUNCED_STATES, post_id__isnull=True, ends_at__gt=now)
    return sum(
        deal_announce(deal=deal) is not None for deal in owed.select_related("merchant").order_by("id")
    )


def _card_text(deal: Deal) -> str:
    """The announcement's words: title, prices, tipping point and the deal's page, in the language the
    merchant posts in (the site's when theirs is not one it speaks)."""
    from django.conf import settings

    title = deal.title if len(deal.title) <= TITLE_IN_POST else deal.title[: TITLE_IN_POST - 1] + "…"
    price = Money(deal.deal_price, deal.currency).format()
    was = Money(deal.list_price, deal.currency).format()
    url = settings.SITE_URL + reverse("deals:deal", args=[deal.id])
    with translation.override(_site_language(deal.merchant.posting_language)):
        return gettext("[Group buy] {title} {price} (was {was}), on at {count} buyers {url}").format(
            title=title, price=price, was=was, count=deal.tipping_point, url=url
        )


def _site_language(language: str) -> str:
    """The site's language closest to a post language tag ("zh" gives "zh-hans"), else its default."""
    from django.conf import settings

    try:
        return translation.get_supported_language_variant(language) if language else settings.LANGUAGE_CODE
    except LookupError:
        return settings.LANGUAGE_CODE


def order_event_record(*, order: Order, event: str, amount: int | None = None, share: Any = None) -> None:
    """Record an order's business event in tracking's outbox, inside the order's own transaction.

    An order placed through a share carries that short link: its id (the event's `link_id`), the post
    it leads from (`post_id`: the deal post or the repost hop), and in the props its code, sharer and
    hop depth, so revenue is credited to the exact hop. `share` is the link as resolved at checkout;
    later events of the order read it again by the id the order keeps.
    """
    from weituan.tracking import facade as tracking

    props: dict[str, Any] = {"quantity": order.quantity, "team_id": order.team_id, "gateway": order.gateway}
    post_id = None
    if order.share_link_id:
        if share is None:
            share = _share_of(order)
        props.update(share_code=order.share_code, link_id=order.share_link_id)
        if share is not None:
            props.update(sharer_id=share.sharer_id, hop_depth=share.hop_depth)
            post_id = share.post_id
    tracking.event_emit(
        event=event,
        user_id=order.buyer_id,
        order_id=order.id,
        revenue=order.amount if amount is None else amount,
        currency=order.currency,
        deal_id=order.deal_id,
        post_id=post_id,
        props=props,
    )
    if event == "order_placed" and order.team_id:
        started = (
            order.team is not None and order.team.leader_id == order.buyer_id and order.team.members == 1
        )
        tracking.event_emit(
            event="team_start" if started else "team_join",
            user_id=order.buyer_id,
            deal_id=order.deal_id,
            props={"team_id": order.team_id},
        )


def orders_placed_record(
    orders: Sequence[tuple[int, int, int, int]], *, deal_id: int, currency: str, gateway: str
) -> None:
    """`order_event_record(event="order_placed")` for several solo orders of one deal placed in one
    transaction, none through a share: each (order id, buyer id, quantity, amount); one statement."""
    from weituan.tracking import facade as tracking

    tracking.events_emit(
        [
            (
                "order_placed",
                buyer_id,
                tracking.event_payload(
                    order_id=order_id,
                    revenue=amount,
                    currency=currency,
                    deal_id=deal_id,
                    props={"quantity": quantity, "team_id": None, "gateway": gateway},
                ),
            )
            for order_id, buyer_id, quantity, amount in orders
        ]
    )


def _share_of(order: Order) -> Any:
    from weituan.deals.services.shares import share_resolve

    return share_resolve(code=order.share_code, deal_id=order.deal_id)


def voucher_event_record(*, voucher: Voucher) -> None:
    from weituan.tracking import facade as tracking

    tracking.event_emit(
        event="voucher_redeemed",
        user_id=voucher.holder_id,
        deal_id=voucher.deal_id,
        order_id=voucher.order_id,
    )
