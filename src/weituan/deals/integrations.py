"""Where deals meet the micro-blog (the deal card post) and tracking (business events through its outbox)."""

import logging
from typing import Any

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from weituan.core.errors import ServiceError
from weituan.core.money import Money
from weituan.deals.models import Deal, Order, Voucher

logger = logging.getLogger(__name__)

TITLE_IN_POST = 40  # characters; keeps the announcement well inside the weighted post length


def deal_card_post_create(*, deal: Deal) -> int | None:
    """Announce a published deal on the merchant's micro-blog; the post carries the live deal card.

    Publishing has already committed, so a post that cannot be made (a rate limit, say) leaves the
    deal published without an announcement rather than undoing it.
    """
    from django.conf import settings

    from weituan.microblog.services.posts import post_create

    if deal.post_id:
        return deal.post_id
    title = deal.title if len(deal.title) <= TITLE_IN_POST else deal.title[: TITLE_IN_POST - 1] + "…"
    price = Money(deal.deal_price, deal.currency).format()
    was = Money(deal.list_price, deal.currency).format()
    url = settings.SITE_URL + reverse("deals:deal", args=[deal.id])
    # Written in the language the merchant posts in, the site's when theirs is not one it speaks.
    with translation.override(_site_language(deal.merchant.posting_language)):
        text = gettext("[Group buy] {title} {price} (was {was}), on at {count} buyers {url}").format(
            title=title, price=price, was=was, count=deal.tipping_point, url=url
        )
    try:
        post = post_create(author=deal.merchant, text=text, deal_id=deal.id)
    except ServiceError as exc:
        logger.warning("deal %s published without its post: %s", deal.id, exc.message)
        return None
    Deal.objects.filter(id=deal.id, post_id__isnull=True).update(post_id=post.id)
    deal.post_id = post.id
    return post.id


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
