"""API shapes of deals, orders, teams, vouchers and wallets, and the JSON bodies the API returns."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from ninja import Schema
from pydantic import AfterValidator, Field, JsonValue
from pydantic.config import JsonDict

from weituan.core.money import MINOR_UNITS
from weituan.deals.models import (
    ORDER_GRAPH,
    REFUND_GRAPH,
    Deal,
    Order,
    OrderEndReason,
    OrderState,
    Team,
    Voucher,
)
from weituan.deals.models.deals import ENDED_STATES
from weituan.deals.queries import WalletView, deal_buyers_counted, flash_batch_next, refund_shown
from weituan.deals.services.vouchers import voucher_code_display
from weituan.deals.services.wallet import TOP_UP_MAX

# The currencies a deal or a wallet may be in, as the document's `enum`; another is refused with
# `invalid_currency` (checked by the services, which name the currency in the refusal).
_CURRENCY_CODES: list[JsonValue] = [*sorted(MINOR_UNITS)]
CURRENCIES: JsonDict = {"enum": _CURRENCY_CODES}


class ErrorOut(Schema):
    error: str
    code: str


def _in_site_time(moment: datetime) -> datetime:
    """A moment given without an offset is read in the site's time zone, as the deal editor reads it, so
    that it compares with one given with an offset; every moment is kept in UTC, so that the answer to a
    create shows it as reading the deal back does."""
    aware = timezone.make_aware(moment) if timezone.is_naive(moment) else moment
    return aware.astimezone(UTC)


# A moment of a deal's calendar; without an offset it is the site's local time.
SiteDatetime = Annotated[
    datetime,
    AfterValidator(_in_site_time),
    Field(description="ISO 8601; without an offset, the site's local time"),
]


class FlashBatchIn(Schema):
    release_at: SiteDatetime
    quantity: int = Field(ge=1)


class DealIn(Schema):
    title: str = Field(min_length=1, max_length=120)
    description: str = ""
    images: list[str] = Field(default=[], description="pictures already on this site (paths or its URLs)")
    media_ids: list[int] = Field(
        default=[],
        description="the merchant's pictures uploaded with POST /api/v2/media, shown after `images`",
    )
    currency: str = Field("CNY", json_schema_extra=CURRENCIES)
    list_price: int = Field(ge=1)
    deal_price: int = Field(ge=1)
    team_price: int | None = Field(default=None, ge=1)
    team_size: int | None = None
    team_window_hours: int | None = Field(
        default=None, ge=1, le=168, description="hours a team has to fill; default: the site's setting (24)"
    )
    tipping_point: int = Field(default=1, ge=1)
    max_quantity: int = Field(ge=1)
    per_user_limit: int = Field(default=1, ge=1)
    gift_limit: int = Field(default=0, ge=0)
    starts_at: SiteDatetime
    ends_at: SiteDatetime
    voucher_valid_days: int = Field(default=90, ge=1, le=3650)
    refund_policy: Literal["window", "anytime", "on_expiry"] = "window"
    refund_window_days: int = Field(default=7, ge=0, le=365)
    flash_batches: list[FlashBatchIn] = []


class DealOut(Schema):
    id: int
    merchant: str
    title: str
    description: str
    images: list[str]
    currency: str
    list_price: int
    deal_price: int
    team_price: int | None
    team_size: int | None
    team_window_hours: int | None = Field(default=None, description="hours a team has to fill (team deals)")
    tipping_point: int  # buyers needed
    buyers: int  # buyers whose payment is held or made, as the tipping point counts them
    max_quantity: int
    released: int
    sold: int
    units_left: int = Field(description="units on sale and not sold yet; 0 once the deal has ended")
    per_user_limit: int
    gift_limit: int
    flash_sale: bool
    next_batch_at: datetime | None = Field(
        default=None, description="a flash sale's next batch: when it goes on sale (null: none is left)"
    )
    next_batch_quantity: int | None = Field(default=None, description="the units the next batch brings")
    state: str
    starts_at: datetime
    ends_at: datetime
    tipped_at: datetime | None
    refund_policy: str
    refund_window_days: int
    voucher_valid_days: int
    url: str


class OrderIn(Schema):
    quantity: int = Field(ge=1, le=1000)
    gift_quantity: int = Field(default=0, ge=0)
    team: Literal["start"] | int | None = None
    unit_price: int | None = Field(default=None, description="the price the buyer saw; refused if it differs")
    share: str | None = Field(
        default=None,
        max_length=16,
        description="the short-link code (`/s/<code>`) the buyer came through; the order is credited to it",
    )
    gateway: str | None = Field(
        default=None,
        max_length=30,
        description="how the buyer pays: `wallet` (the default) or a payment provider the site offers;"
        " any other name is refused with `unknown_gateway`",
    )


def _meanings(choices: Any) -> str:
    # The API document is in English whatever language is active when it is built: labels marked for
    # translation are read untranslated.
    with translation.override(None):
        return "; ".join(f"`{choice.value}`: {choice.label}" for choice in choices)


def _one_of(states: list[str]) -> JsonDict:
    """The OpenAPI `enum` of a state a body shows as a string: every state of its graph."""
    return {"enum": list(states)}


class RefundOut(Schema):
    state: str = Field(
        description="`requested`: asked of the payment provider and not confirmed yet (refund pending: the"
        " vouchers are out of use, the money is not back yet); `completed`: the money is returned;"
        " `declined`: the provider refused, the vouchers are as they were",
        json_schema_extra=_one_of(REFUND_GRAPH.states),
    )
    amount: int = Field(description="what is refunded, in minor units of the order's currency")
    requested_at: datetime


class OrderOut(Schema):
    id: int
    deal_id: int
    team_id: int | None
    quantity: int
    gift_quantity: int
    unit_price: int
    amount: int
    currency: str
    state: str = Field(description=_meanings(OrderState), json_schema_extra=_one_of(ORDER_GRAPH.states))
    end_reason: str | None = Field(
        default=None,
        description="why the order ended without being paid (it is `voiding`, `voided` or `expired`): "
        + _meanings(OrderEndReason)
        + "; null for an order that has not ended so (pending, held, paid or refunded)",
        json_schema_extra={"enum": [*OrderEndReason.values, None]},
    )
    gateway: str
    created_at: datetime
    captured_at: datetime | None
    share: str | None = Field(default=None, description="the short-link code the order is credited to")
    vouchers: list[str]
    refund: RefundOut | None = Field(
        default=None,
        description="the order's refund still waiting for its provider if there is one (shown as refund"
        " pending), else its latest refund; null when it was never refunded",
    )


class WebhookOut(Schema):
    event: str
    result: str = Field(
        description="what the event did: authorized, captured, failed (the provider refused the capture: the"
        " order failed and its hold was released), expired, voided, released, unchanged, ignored"
    )
    order_id: int | None


class TeamOut(Schema):
    id: int
    deal_id: int
    leader: str
    size: int
    members: int
    state: str
    expires_at: datetime
    merged_into: int | None
    share_url: str
    member_names: list[str]
    rescue_offered_at: datetime | None = Field(
        description="when the members were offered a way out (the team had not filled an hour before closing)"
    )
    merge_options: list[int] = Field(
        description="open teams of the deal with room for all its members: the leader may merge into one"
    )
    solo_price: int = Field(description="the deal's solo price per unit, which a member may switch to")


class MergeIn(Schema):
    into: int = Field(description="the open team to move this team into")


class VoucherOut(Schema):
    id: int = Field(
        description="the voucher's id, what its list is paged by (`max_id`, `since_id`, `min_id`)"
    )
    code: str
    display_code: str
    deal_id: int
    deal_title: str
    state: str
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_by: str | None
    qr_png: str = Field(description="the code's QR image (PNG), for the holder's or the merchant's token")
    qr_svg: str = Field(description="the code's QR image (SVG), for the holder's or the merchant's token")


LIST_PAGE_MAX = 200


class ListPageQuery(Schema):
    """A page of one of the caller's lists (orders, vouchers), newest first, paged by id as Mastodon
    pages its lists: the `Link` header gives the next (older) page as `max_id` and the previous (newer)
    one as `min_id`, the request's other parameters kept."""

    limit: int = Field(50, description=f"how many items (1 to {LIST_PAGE_MAX}; beyond, the nearest of those)")
    max_id: int | None = Field(None, description="items older than this id")
    since_id: int | None = Field(None, description="the newest items newer than this id")
    min_id: int | None = Field(None, description="the items just newer than this id")


class OrderPageQuery(ListPageQuery):
    before: int | None = Field(None, description="the same as `max_id`, which is used when both are given")


class WalletOut(Schema):
    currency: str
    available: int
    held: int


class WalletQuery(Schema):
    currency: str = Field("CNY", json_schema_extra=CURRENCIES)


class TopUpIn(Schema):
    # The ceiling is checked by the service (`invalid_amount`, naming it); the document states it.
    amount: int = Field(ge=1, json_schema_extra={"maximum": TOP_UP_MAX})
    currency: str = Field("CNY", json_schema_extra=CURRENCIES)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def deal_body(deal: Deal) -> dict[str, Any]:
    # A batch not released by the deal's end never goes on sale.
    batch = flash_batch_next(deal_id=deal.id) if deal.flash_sale and deal.state not in ENDED_STATES else None
    return {
        "id": deal.id,
        "merchant": deal.merchant.username,
        "title": deal.title,
        "description": deal.description,
        "images": list(deal.images),
        "currency": deal.currency,
        "list_price": deal.list_price,
        "deal_price": deal.deal_price,
        "team_price": deal.team_price,
        "team_size": deal.team_size,
        "team_window_hours": deal.team_window_hours if deal.team_size else None,
        "tipping_point": deal.tipping_point,
        "buyers": deal_buyers_counted(deal_id=deal.id),
        "max_quantity": deal.max_quantity,
        "released": deal.released,
        "sold": deal.sold,
        "units_left": deal.units_left,
        "per_user_limit": deal.per_user_limit,
        "gift_limit": deal.gift_limit,
        "flash_sale": deal.flash_sale,
        "next_batch_at": _iso(batch.release_at) if batch else None,
        "next_batch_quantity": batch.quantity if batch else None,
        "state": deal.state,
        "starts_at": _iso(deal.starts_at),
        "ends_at": _iso(deal.ends_at),
        "tipped_at": _iso(deal.tipped_at),
        "refund_policy": deal.refund_policy,
        "refund_window_days": deal.refund_window_days,
        "voucher_valid_days": deal.voucher_valid_days,
        "url": settings.SITE_URL + reverse("deals:deal", args=[deal.id]),
    }


def order_body(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "deal_id": order.deal_id,
        "team_id": order.team_id,
        "quantity": order.quantity,
        "gift_quantity": order.gift_quantity,
        "unit_price": order.unit_price,
        "amount": order.amount,
        "currency": order.currency,
        "state": order.state,
        "end_reason": order.end_reason or None,
        "gateway": order.gateway,
        "created_at": _iso(order.created_at),
        "captured_at": _iso(order.captured_at),
        "share": order.share_code or None,
        "vouchers": _voucher_codes(order),
        "refund": _refund_body(order),
    }


def _refund_body(order: Order) -> dict[str, Any] | None:
    # An order being placed has no refund: no query on the checkout's answer.
    refund = None if hasattr(order, "issued_vouchers") else refund_shown(order=order)
    if refund is None:
        return None
    return {"state": refund.state, "amount": refund.amount, "requested_at": _iso(refund.created_at)}


def _voucher_codes(order: Order) -> list[str]:
    # An order paid while it was placed still has the vouchers it was just given.
    issued = getattr(order, "issued_vouchers", None)
    if issued is not None:
        return [voucher.code for voucher in sorted(issued, key=lambda voucher: voucher.id)]
    if "vouchers" in getattr(order, "_prefetched_objects_cache", {}):  # a list's orders: read at once
        return [voucher.code for voucher in sorted(order.vouchers.all(), key=lambda voucher: voucher.id)]
    return list(order.vouchers.order_by("id").values_list("code", flat=True))


def team_body(team: Team, member_names: list[str], merge_options: list[int] | None = None) -> dict[str, Any]:
    return {
        "id": team.id,
        "deal_id": team.deal_id,
        "leader": team.leader.username,
        "size": team.size,
        "members": team.members,
        "state": team.state,
        "expires_at": _iso(team.expires_at),
        "merged_into": team.merged_into_id,
        "share_url": settings.SITE_URL + reverse("deals:team", args=[team.id]),
        "member_names": member_names,
        "rescue_offered_at": _iso(team.rescue_offered_at) if team.rescue_offered_at else None,
        "merge_options": merge_options or [],
        "solo_price": team.deal.deal_price,
    }


def voucher_body(voucher: Voucher) -> dict[str, Any]:
    return {
        "id": voucher.id,
        "code": voucher.code,
        "display_code": voucher_code_display(voucher.code),
        "deal_id": voucher.deal_id,
        "deal_title": voucher.deal.title,
        "state": voucher.state,
        "expires_at": _iso(voucher.expires_at),
        "redeemed_at": _iso(voucher.redeemed_at),
        "redeemed_by": voucher.redeemed_by.username if voucher.redeemed_by else None,
        "qr_png": settings.SITE_URL + reverse("api_v1:voucher_qr_png", kwargs={"code": voucher.code}),
        "qr_svg": settings.SITE_URL + reverse("api_v1:voucher_qr_svg", kwargs={"code": voucher.code}),
    }


def wallet_body(wallet: WalletView) -> dict[str, Any]:
    return {"currency": wallet.currency, "available": wallet.available, "held": wallet.held}
