"""What other apps may know of deals: the live deal card, as a plain dataclass and as HTML, and the
fixed facts of a deal for a link preview."""

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from weituan.core.money import Money
from weituan.deals.models import Deal, DealState
from weituan.deals.models.deals import ENDED_STATES
from weituan.deals.pricing import discount_percent
from weituan.deals.queries import buyers_counted_until_tipped, flash_batch_next
from weituan.microblog.queries.media import UploadedPicture, uploaded_pictures


@dataclass(frozen=True)
class DealCard:
    deal_id: int
    title: str
    merchant: str
    image: str | None  # the deal's first picture, which the card leads with
    currency: str
    price_display: str  # formatted, e.g. "¥99.00"
    list_price_display: str
    deal_price_minor: int
    team_price: str | None
    team_size: int | None
    discount_percent: int
    sold: int  # units taken
    tipping_point: int  # buyers needed
    # Buyers counting towards the tipping point, as the tip check counts them (`deal_buyers_counted`);
    # None once the deal has tipped, when the card says it is on instead.
    buyers: int | None
    tipped: bool
    progress_percent: int  # towards the tipping point, 0-100
    units_left: int  # 0 once the deal has ended, when the card says how it ended instead
    state: str
    on_sale: bool
    ends_at: datetime
    seconds_left: int
    url: str
    starts_at: datetime | None = None  # a card of a deal not on sale yet says when it will be
    # A flash sale whose released units are all taken: when its next batch goes on sale and how many
    # units it brings (None when there is no batch to come, or units are left now).
    next_batch_at: datetime | None = None
    next_batch_quantity: int | None = None
    # Whether that batch is the sale's first: nothing of the flash sale has gone on sale yet.
    first_batch: bool = False
    # The small version of `image` when it is an upload (a card shows a thumbnail), else `image` itself.
    image_thumbnail: str | None = None


_PICTURES: "OrderedDict[str, UploadedPicture]" = OrderedDict()
_PICTURES_LOCK = threading.Lock()
PICTURES_KEPT = 5_000


def _pictures(urls: Iterable[str]) -> dict[str, UploadedPicture]:
    """The uploads among `urls` (see `uploaded_pictures`). An upload's files and size never change once
    stored, and a deal that changes its pictures names other URLs, so what is found is kept by URL."""
    wanted = set(urls)
    found: dict[str, UploadedPicture] = {}
    with _PICTURES_LOCK:
        for url in list(wanted):
            kept = _PICTURES.get(url)
            if kept is not None:
                found[url] = kept
                wanted.discard(url)
    if not wanted:
        return found
    read = uploaded_pictures(wanted)
    with _PICTURES_LOCK:
        _PICTURES.update(read)
        while len(_PICTURES) > PICTURES_KEPT:
            _PICTURES.popitem(last=False)
    return {**found, **read}


def _thumbnail_of(image: str | None) -> str | None:
    if image is None:
        return None
    upload = _pictures([image]).get(image)
    return upload.thumbnail_url if upload is not None else image


def deal_card(deal_id: int, viewer: Any = None) -> DealCard | None:
    """The live card of a published deal, or None for a missing or draft deal (the same for every viewer)."""
    deal = (
        Deal.objects.select_related("merchant")
        .filter(id=deal_id)
        .exclude(state=DealState.DRAFT)
        # Counted in the same query, and only before the deal tips: after that the card shows no count.
        .annotate(buyers=buyers_counted_until_tipped())
        .first()
    )
    if deal is None:
        return None
    now = timezone.now()
    tipped = deal.tipped_at is not None
    units_left = deal.units_left
    # Read only for a flash sale with nothing left on sale now: the card says when more comes.
    ended = deal.state in ENDED_STATES
    next_batch = (
        flash_batch_next(deal_id=deal.id) if deal.flash_sale and units_left == 0 and not ended else None
    )
    buyers = None if tipped else int(deal.buyers)  # type: ignore[attr-defined]
    image = deal.images[0] if deal.images else None
    return DealCard(
        deal_id=deal.id,
        title=deal.title,
        merchant=deal.merchant.username,
        image=image,
        image_thumbnail=_thumbnail_of(image),
        currency=deal.currency,
        price_display=Money(deal.deal_price, deal.currency).format(),
        list_price_display=Money(deal.list_price, deal.currency).format(),
        deal_price_minor=deal.deal_price,
        team_price=Money(deal.team_price, deal.currency).format() if deal.team_price else None,
        team_size=deal.team_size,
        discount_percent=discount_percent(list_price=deal.list_price, deal_price=deal.deal_price),
        sold=deal.sold,
        tipping_point=deal.tipping_point,
        buyers=buyers,
        tipped=tipped,
        progress_percent=100 if buyers is None else min(100, 100 * buyers // max(deal.tipping_point, 1)),
        units_left=units_left,
        state=deal.state,
        on_sale=deal.state in (DealState.LIVE, DealState.TIPPED) and deal.starts_at <= now < deal.ends_at,
        ends_at=deal.ends_at,
        seconds_left=max(int((deal.ends_at - now).total_seconds()), 0),
        url=reverse("deals:deal", args=[deal.id]),
        starts_at=deal.starts_at,
        next_batch_at=next_batch.release_at if next_batch else None,
        next_batch_quantity=next_batch.quantity if next_batch else None,
        first_batch=bool(next_batch and next_batch.opens_sale),  # type: ignore[attr-defined]
    )


def deal_card_html(deal_id: int) -> str:
    """The card as an HTML fragment (it refreshes itself with htmx), for posts and reposts."""
    card = deal_card(deal_id)
    if card is None:
        return ""
    return render_to_string("deals/_card.html", {"card": card})


@dataclass(frozen=True)
class DealPreview:
    """What a link preview of a deal shows. A deal's title, prices, images and merchant are fixed once it
    is published (only a draft is edited, and a draft has no preview), so a preview never goes stale
    and is kept per process."""

    deal_id: int
    title: str
    description: str  # the price and the discount, the same in every language
    merchant: str
    image: str | None
    path: str  # the deal page, e.g. /deals/42
    # The size of `image` in pixels when it is an upload (0 when not known, as for a static picture).
    image_width: int = 0
    image_height: int = 0


_PREVIEWS: "OrderedDict[int, DealPreview | None]" = OrderedDict()
_PREVIEWS_LOCK = threading.Lock()
PREVIEWS_KEPT = 5_000


def deal_previews_clear() -> None:
    """Forget the kept previews and pictures (tests: a database emptied between them gives ids out again)."""
    with _PREVIEWS_LOCK:
        _PREVIEWS.clear()
    with _PICTURES_LOCK:
        _PICTURES.clear()


def deal_previews(deal_ids: Iterable[int]) -> dict[int, DealPreview]:
    """The previews of the published deals among `deal_ids` (drafts and missing deals left out); the ones
    not kept yet are read in one query."""
    wanted = set(deal_ids)
    found: dict[int, DealPreview] = {}
    with _PREVIEWS_LOCK:
        for deal_id in list(wanted):
            if deal_id in _PREVIEWS:
                preview = _PREVIEWS[deal_id]
                wanted.discard(deal_id)
                if preview is not None:
                    found[deal_id] = preview
    if not wanted:
        return found
    read: dict[int, DealPreview | None] = dict.fromkeys(wanted)
    deals = list(Deal.objects.select_related("merchant").filter(id__in=wanted).exclude(state=DealState.DRAFT))
    uploads = _pictures(deal.images[0] for deal in deals if deal.images)
    for deal in deals:
        image = deal.images[0] if deal.images else None
        upload = uploads.get(image) if image else None
        price, listed = Money(deal.deal_price, deal.currency), Money(deal.list_price, deal.currency)
        discount = discount_percent(list_price=deal.list_price, deal_price=deal.deal_price)
        read[deal.id] = DealPreview(
            deal_id=deal.id,
            title=deal.title,
            description=f"{price.format()} · {listed.format()} · -{discount}%",
            merchant=deal.merchant.username,
            image=image,
            path=reverse("deals:deal", args=[deal.id]),
            image_width=upload.width if upload else 0,
            image_height=upload.height if upload else 0,
        )
    with _PREVIEWS_LOCK:
        for deal_id, preview in read.items():
            if preview is not None:  # a draft may be published later: not kept
                _PREVIEWS[deal_id] = preview
                found[deal_id] = preview
        while len(_PREVIEWS) > PREVIEWS_KEPT:
            _PREVIEWS.popitem(last=False)
    return found
