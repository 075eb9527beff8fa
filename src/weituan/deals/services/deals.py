"""The deal lifecycle: create, publish, start, tip, sell out (and again), end; each step idempotent.

Every handler moves the deal by conditional UPDATE (core.states.advance) and then does the work the
deal's *current* state owes (`deal_settle`), whether or not this call moved it. That is what makes a
handler safe to re-run after a crash half-way through capturing or voiding.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from weituan.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.core.money import MINOR_UNITS
from weituan.core.states import advance
from weituan.deals.errors import NotYourDeal
from weituan.deals.models import (
    DEAL_GRAPH,
    Deal,
    DealState,
    FlashBatch,
    Order,
    OrderEndReason,
    OrderState,
    RefundPolicy,
    Team,
    TeamState,
)
from weituan.deals.models.deals import ENDED_STATES, TIPPED_STATES
from weituan.deals.models.orders import COUNTED_TEAM, UNFILLED_TEAM_STATES
from weituan.deals.queries import deal_buyers_counted
from weituan.deals.services.holds import order_capture, order_hold_step, order_reservation_expire, order_void
from weituan.deals.services.locks import deal_lock_for_tip
from weituan.deals.services.stock import (
    deal_selling_again,
    stock_gate_reconcile_if_reachable,
    stock_gates_unstick,
)
from weituan.deals.services.teams import RESCUE_LEAD, rescue_offer_at, team_expire, team_rescue_offer
from weituan.deals.services.write_keys import publish_request, write_key_deal, write_key_keep, write_key_of
from weituan.microblog.models import MediaAttachment


@dataclass(frozen=True)
class DealInput:
    title: str
    list_price: int
    deal_price: int
    max_quantity: int
    starts_at: datetime
    ends_at: datetime
    description: str = ""
    images: tuple[str, ...] = ()  # pictures on this site (a path, or a URL of the site)
    media_ids: tuple[int, ...] = ()  # the merchant's uploads (`POST /api/v2/media`), shown after `images`
    currency: str = "CNY"
    tipping_point: int = 1
    per_user_limit: int = 1
    gift_limit: int = 0
    team_price: int | None = None
    team_size: int | None = None
    team_window_hours: int | None = None  # None: the site's DEALS_TEAM_WINDOW_HOURS (24 h by default)
    voucher_valid_days: int = 90
    refund_policy: str = RefundPolicy.WINDOW
    refund_window_days: int = 7
    flash_batches: tuple[tuple[datetime, int], ...] = ()


MAX_IMAGES = 9
# The largest figures a deal may be given. Orders, holds and ledger postings multiply a price by a
# quantity in 64-bit columns, the quantities are kept in 32-bit ones, and voucher expiries and refund
# windows are dates: beyond these a deal could be saved but not sold, settled or shown.
PRICE_MAX = 1_000_000_000  # minor units per unit
QUANTITY_MAX = 1_000_000_000
VOUCHER_VALID_DAYS_MAX = 3650
REFUND_WINDOW_DAYS_MAX = 365


_PICTURE_PATH = re.compile(r"[A-Za-z0-9_./-]+")


def _on_this_site(url: str) -> bool:
    """A picture this site serves: a file under its media or static URL, as a path or an http(s) URL on
    its own host, with no query. Anything else is refused: pictures elsewhere (the pages' content policy
    shows only the site's own), URLs of another scheme (javascript:, data:), and the site's other pages,
    which every viewer's browser would request with their cookies."""
    parts, site = urlsplit(url), urlsplit(settings.SITE_URL)
    if (parts.scheme or parts.netloc) and (
        parts.scheme not in ("http", "https") or parts.netloc != site.netloc
    ):
        return False
    path = parts.path
    if (
        parts.query
        or parts.fragment
        or not _PICTURE_PATH.fullmatch(path)
        or "/../" in path
        or path.endswith("/..")
    ):
        return False
    return any(
        path.startswith(prefix)
        for prefix in (settings.MEDIA_URL, settings.STATIC_URL)
        if prefix.startswith("/")
    )


# A problem of a deal as entered: its code, its words, and the fields of `DealInput` its check reads.
DealProblem = tuple[str, str, tuple[str, ...]]


def _problems(data: DealInput) -> list[DealProblem]:
    """Every problem of a deal as entered, in the editor's order."""
    problems: list[DealProblem] = []

    def found(code: str, text: str, *read: str) -> None:
        problems.append((code, text, read))

    if not data.title.strip():
        found("title_required", "title is required", "title")
    if len(data.images) + len(data.media_ids) > MAX_IMAGES:
        found("too_many_images", f"a deal shows at most {MAX_IMAGES} pictures", "images", "media_ids")
    if any(not _on_this_site(url) for url in data.images):
        found(
            "images_not_on_site",
            "images must be pictures on this site: upload them (media_ids) instead",
            "images",
        )
    if data.currency not in MINOR_UNITS:
        found("unknown_currency", f"unknown currency {data.currency}", "currency")
    if data.list_price > PRICE_MAX:
        found("list_price_range", f"list_price must be at most {PRICE_MAX}", "list_price")
    if not 0 < data.deal_price <= data.list_price:
        found(
            "deal_price_range",
            "deal_price must be above 0 and at most list_price",
            "deal_price",
            "list_price",
        )
    if data.max_quantity > QUANTITY_MAX:
        found("max_quantity_range", f"max_quantity must be at most {QUANTITY_MAX}", "max_quantity")
    if data.max_quantity < 1 or not 1 <= data.tipping_point <= data.max_quantity:
        found(
            "tipping_point_range",
            "tipping_point must be between 1 and max_quantity",
            "tipping_point",
            "max_quantity",
        )
    if data.per_user_limit < 1 or data.gift_limit < 0:
        found("per_user_limit_range", "per_user_limit must be at least 1", "per_user_limit", "gift_limit")
    if max(data.per_user_limit, data.gift_limit) > QUANTITY_MAX:
        found(
            "limits_range",
            f"per_user_limit and gift_limit must be at most {QUANTITY_MAX}",
            "per_user_limit",
            "gift_limit",
        )
    if not 1 <= data.voucher_valid_days <= VOUCHER_VALID_DAYS_MAX:
        found(
            "voucher_valid_days_range",
            f"voucher_valid_days must be 1 to {VOUCHER_VALID_DAYS_MAX}",
            "voucher_valid_days",
        )
    if not 0 <= data.refund_window_days <= REFUND_WINDOW_DAYS_MAX:
        found(
            "refund_window_days_range",
            f"refund_window_days must be 0 to {REFUND_WINDOW_DAYS_MAX}",
            "refund_window_days",
        )
    if data.ends_at <= data.starts_at:
        found("window_order", "ends_at must be after starts_at", "starts_at", "ends_at")
    if (data.team_size is None) != (data.team_price is None):
        found("team_fields_together", "team_size and team_price go together", "team_size", "team_price")
    if data.team_window_hours is not None and not 1 <= data.team_window_hours <= 168:
        found("team_window_range", "team_window_hours must be 1 to 168", "team_window_hours")
    if data.team_size is not None and data.team_price is not None:
        if not 2 <= data.team_size <= 50:
            found("team_size_range", "team_size must be 2 to 50", "team_size", "team_price")
        if not 0 < data.team_price < data.deal_price:
            found(
                "team_price_range",
                "team_price must be below deal_price",
                "team_price",
                "team_size",
                "deal_price",
            )
    if data.refund_policy not in RefundPolicy.values:
        found(
            "refund_policy_unknown",
            f"refund_policy must be one of {', '.join(RefundPolicy.values)}",
            "refund_policy",
        )
    if data.flash_batches:
        if sum(qty for _, qty in data.flash_batches) != data.max_quantity:
            found(
                "flash_batches_total",
                "flash batches must add up to max_quantity",
                "flash_batches",
                "max_quantity",
            )
        if any(qty < 1 for _, qty in data.flash_batches):
            found("flash_batch_empty", "every flash batch needs at least one unit", "flash_batches")
        # One unit a buyer is what makes a flash sale's batches reach many buyers; a limit asked for
        # beyond that is refused rather than quietly lowered.
        if data.per_user_limit != 1 or data.gift_limit != 0:
            found(
                "flash_one_per_user",
                "a flash sale sells one unit per buyer: per_user_limit must be 1 and gift_limit 0",
                "flash_batches",
                "per_user_limit",
                "gift_limit",
            )
        # A batch due once the deal has ended would never go on sale, its units counted in the maximum
        # but never offered; one due before the start goes on sale with it. (A window that ends before
        # it starts is refused on its own.)
        if data.ends_at > data.starts_at and any(at >= data.ends_at for at, _ in data.flash_batches):
            found(
                "flash_batch_after_end",
                "every flash batch must go on sale before ends_at",
                "flash_batches",
                "starts_at",
                "ends_at",
            )
    return problems


def _validate(data: DealInput) -> None:
    """Refuse a deal that cannot be sold as entered, naming every problem at once: `problems` in words,
    `problem_codes` (one each, in the same order) for a form to put each beside its field."""
    problems = _problems(data)
    if problems:
        texts = [text for _, text, _ in problems]
        raise ValidationFailed(
            "; ".join(texts),
            code="invalid_deal",
            problems=texts,
            problem_codes=[code for code, _, _ in problems],
        )


# What a field not given stands in as, for the checks that do not read it (`deal_input_problems`).
_STAND_INS: dict[str, Any] = {
    "title": "",
    "list_price": 0,
    "deal_price": 0,
    "max_quantity": 0,
    "starts_at": datetime(2000, 1, 1, tzinfo=UTC),
    "ends_at": datetime(2000, 1, 1, tzinfo=UTC),
}
_INPUT_FIELDS = frozenset(DealInput.__dataclass_fields__)


def deal_input_problems(given: Mapping[str, Any]) -> list[str]:
    """The codes of the problems the deal's checks (`deal_create`'s) find among the fields of a deal
    that are `given` (by `DealInput`'s names), leaving out every check that reads a field not given: a
    form some of whose fields could not be read shows, beside those, every other problem at once,
    rather than each only once the one before is put right."""
    known = {name: value for name, value in given.items() if name in _INPUT_FIELDS}
    data = DealInput(**{**_STAND_INS, **known})
    return [code for code, _, read in _problems(data) if known.keys() >= set(read)]


def _deal_fields(merchant: Any, data: DealInput) -> dict[str, Any]:
    """The deal's columns as `data` sets them."""
    flash = bool(data.flash_batches)
    return dict(
        title=data.title.strip(),
        description=data.description,
        images=list(data.images) + _uploaded_images(merchant, data.media_ids),
        currency=data.currency,
        list_price=data.list_price,
        deal_price=data.deal_price,
        team_price=data.team_price,
        team_size=data.team_size,
        team_window_hours=data.team_window_hours or settings.DEALS_TEAM_WINDOW_HOURS,
        tipping_point=data.tipping_point,
        max_quantity=data.max_quantity,
        per_user_limit=data.per_user_limit,
        gift_limit=data.gift_limit,
        flash_sale=flash,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        voucher_valid_days=data.voucher_valid_days,
        refund_policy=data.refund_policy,
        refund_window_days=data.refund_window_days,
    )


def deal_create(*, merchant: Any, data: DealInput) -> Deal:
    """A draft deal of a verified merchant."""
    if not merchant.is_verified_merchant:
        raise PermissionDenied("Only verified merchants can create deals", code="not_merchant")
    _validate(data)
    fields = _deal_fields(merchant, data)
    with transaction.atomic():
        deal = Deal.objects.create(merchant=merchant, **fields)
        FlashBatch.objects.bulk_create(
            [FlashBatch(deal=deal, release_at=at, quantity=qty) for at, qty in data.flash_batches]
        )
    return deal


def deal_update(*, deal_id: int, by: Any, data: DealInput) -> Deal:
    """Change a draft as a whole (its flash batches replaced by `data`'s). Once published, a deal's
    terms are what buyers were offered and stay as they are: `deal_not_draft`."""
    _validate(data)
    with transaction.atomic():
        deal = deal_for_merchant(deal_id=deal_id, merchant=by)
        deal = Deal.objects.select_for_update().get(id=deal.id)
        if deal.state != DealState.DRAFT:
            raise Conflict(
                "Only a draft can be edited; this deal is already published", code="deal_not_draft"
            )
        for name, value in _deal_fields(by, data).items():
            setattr(deal, name, value)
        deal.save()
        FlashBatch.objects.filter(deal=deal).delete()
        FlashBatch.objects.bulk_create(
            [FlashBatch(deal=deal, release_at=at, quantity=qty) for at, qty in data.flash_batches]
        )
    return deal


def _uploaded_images(merchant: Any, media_ids: tuple[int, ...]) -> list[str]:
    """The URLs of the merchant's own uploads, in the order given; any other id is refused."""
    if not media_ids:
        return []
    # A number beyond any id names no upload; the stores cannot even compare with it.
    asked = [media_id for media_id in media_ids if 0 < media_id <= MAX_ID]
    found = {
        media.id: media.file.url for media in MediaAttachment.objects.filter(id__in=asked, owner=merchant)
    }
    missing = [media_id for media_id in media_ids if media_id not in found]
    if missing:
        raise ValidationFailed(
            f"No uploaded picture of yours with id {missing[0]}", code="invalid_media", media_ids=missing
        )
    return [found[media_id] for media_id in media_ids]


def deal_for_merchant(*, deal_id: int, merchant: Any) -> Deal:
    """The deal, if `merchant` owns it; another merchant's deal is refused with `not_your_deal`."""
    deal = Deal.objects.filter(id=deal_id).first()
    if deal is None:
        raise NotFound("No such deal")
    if deal.merchant_id != merchant.id:
        raise NotYourDeal("This deal belongs to another merchant")
    return deal


def deal_publish(*, deal_id: int, by: Any, client_key: str | None = None) -> Deal:
    """Put a draft on the calendar: live now, or scheduled for its start; schedule its transitions.

    `client_key` (the request's Idempotency-Key) is kept by the publication itself (`write_keys`): the
    request sent again with it is answered with the deal however long after, never refused
    `already_published`, and announces it if the first try could not.

    The announcement (`deal_card_post_create`) follows the publication's commit; one lost with its
    process, or refused, is made by the deal sweep.
    """
    from weituan.deals import tasks
    from weituan.deals.integrations import deal_card_post_create
    from weituan.deals.services.schedule import schedule_at

    kept = write_key_of(sender_id=by.id, key=client_key, request=publish_request(deal_id))
    done = write_key_deal(kept=kept)
    if done is not None:
        deal_card_post_create(deal=done)  # the first try's post, or the one it could not make
        return done
    if not by.is_verified_merchant:  # a merchant whose badge was taken away keeps only the deals it has
        raise PermissionDenied("Only verified merchants can publish deals", code="not_merchant")
    deal = deal_for_merchant(deal_id=deal_id, merchant=by)
    now = timezone.now()
    if deal.ends_at <= now:
        raise ValidationFailed("This deal's window has already ended", code="deal_window_over")
    target = DealState.LIVE if deal.starts_at <= now else DealState.SCHEDULED
    with transaction.atomic():
        released = 0 if deal.flash_sale else deal.max_quantity
        moved = advance(
            DEAL_GRAPH, Deal.objects.filter(id=deal.id, state=DealState.DRAFT), target, released=released
        )
        if not moved:
            # The same request sent twice at once: the one that waited for the deal's row finds it
            # published by the other, and answers with it.
            done = write_key_deal(kept=kept)
            if done is not None:
                return done
            raise ValidationFailed(f"This deal is already {deal.state}", code="already_published")
        write_key_keep(kept=kept, deal_id=deal.id)
        schedule_at(tasks.deal_start_task, deal.starts_at, deal.id)
        schedule_at(tasks.deal_end_task, deal.ends_at, deal.id)
        for batch in deal.batches.all():
            schedule_at(tasks.flash_batch_release_task, batch.release_at, batch.id)
    if target == DealState.LIVE:
        deal_start(deal_id=deal.id)  # puts flash batches that are already due on sale
    deal.refresh_from_db()
    deal_card_post_create(deal=deal)
    return deal


def deal_start(*, deal_id: int, now: datetime | None = None) -> bool:
    """Put a scheduled deal on sale once its start has come (at `now`, the present by default), with
    the flash batches already due."""
    now = now or timezone.now()
    moved = advance(
        DEAL_GRAPH,
        Deal.objects.filter(id=deal_id, starts_at__lte=now, state=DealState.SCHEDULED),
        DealState.LIVE,
    )
    for batch_id in FlashBatch.objects.filter(
        deal_id=deal_id, released_at__isnull=True, release_at__lte=now
    ).values_list("id", flat=True):
        flash_batch_release(batch_id=batch_id, now=now)
    return bool(moved)


def flash_batch_release(*, batch_id: int, now: datetime | None = None) -> bool:
    """Put one flash batch on sale, once, when its time has come (at `now`, the present by default)."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = FlashBatch.objects.select_related("deal").filter(id=batch_id).first()
        if batch is None or batch.deal.state not in (DealState.LIVE, DealState.TIPPED):
            return False
        marked = FlashBatch.objects.filter(id=batch_id, released_at__isnull=True, release_at__lte=now).update(
            released_at=now
        )
        if not marked:
            return False
        Deal.objects.filter(id=batch.deal_id).update(released=F("released") + batch.quantity)
        # At once, not on commit: Redis showing more released than the database can only send more
        # attempts to the database's conditional UPDATE, never sell more. Redis away does not hold the
        # batch back: the gate takes the database's count with the first take once it answers.
        stock_gate_reconcile_if_reachable(deal_id=batch.deal_id)
    return True


def _tips(deal: Deal) -> bool:
    """Whether a live deal has as many buyers as its tipping point. The buyers counted are among its
    takers, so a deal with fewer takers is not counted at all."""
    return (
        deal.state == DealState.LIVE
        and deal.takers >= deal.tipping_point
        and deal_buyers_counted(deal_id=deal.id) >= deal.tipping_point
    )


def _deal_tip(*, deal_id: int) -> bool:
    """Move a live deal to tipped if it has as many buyers as its tipping point, counted in the same
    transaction, under the deal's lock (`deal_lock_for_tip`): a buyer cancelling meanwhile either
    ended their order before the count, or waits and finds the deal tipped."""
    with transaction.atomic():
        deal = deal_lock_for_tip(deal_id=deal_id)
        if deal is None or not _tips(deal):
            return False
        # Live, under the lock (`_tips`): never a sold-out deal, which goes back to tipped on its own.
        return bool(
            advance(DEAL_GRAPH, Deal.objects.filter(id=deal_id), DealState.TIPPED, tipped_at=timezone.now())
        )


def deal_tip_check(*, deal_id: int) -> bool:
    """Tip a live deal once enough buyers hold or paid for an order, then capture; mark it sold out when
    nothing is left.

    The buyers are counted first without a lock, as the check runs after many orders of a deal that
    has not enough of them yet; only a deal that seems to tip is locked and counted again."""
    deal = Deal.objects.filter(id=deal_id).first()
    if deal is None:
        return False
    tipped = _tips(deal) and _deal_tip(deal_id=deal_id)
    advance(
        DEAL_GRAPH,
        Deal.objects.filter(id=deal_id, sold__gte=F("max_quantity"), state=DealState.TIPPED),
        DealState.SOLD_OUT,
    )
    deal_settle(deal_id=deal_id)
    return tipped


def deal_end(*, deal_id: int, now: datetime | None = None) -> str | None:
    """At the end of the window: a deal that never tipped fails, a tipped one closes. Then settle."""
    now = now or timezone.now()
    deal = Deal.objects.filter(id=deal_id, ends_at__lte=now).first()
    if deal is None:
        return None
    if _tips(deal):
        deal_tip_check(deal_id=deal_id)
    due = Deal.objects.filter(id=deal_id, ends_at__lte=now)
    advance(DEAL_GRAPH, due, DealState.FAILED)
    advance(DEAL_GRAPH, due, DealState.CLOSED)
    # A scheduled deal whose window passed unseen goes live first, then fails like any other.
    if advance(DEAL_GRAPH, due.filter(state=DealState.SCHEDULED), DealState.LIVE):
        advance(DEAL_GRAPH, due, DealState.FAILED)
    deal_settle(deal_id=deal_id)
    return Deal.objects.filter(id=deal_id).values_list("state", flat=True).get()


def deal_settle(*, deal_id: int) -> dict[str, int]:
    """Do what the deal's state owes its holds; idempotent, and the recovery path after a crash.

    - tipped / sold out / closed: capture every held order outside an unfilled team;
    - closed or failed: no team stays open, no reservation stays pending;
    - failed: void every hold; closed: void every hold it does not capture;
    - whatever the state: finish every void under way (a `voiding` order whose provider failed, or
      whose process stopped, before the void was recorded).

    A capture or a void its gateway could not be reached for leaves that order held (or voiding); the
    deal sweep settles the deal again until none is left. A capture the provider refuses for good fails
    its order instead (released like a cancelled hold, its buyer told: `order_capture`), and a void it
    refuses for good is recorded (`order_void`), so no refusal is asked again for ever.
    """
    state = Deal.objects.filter(id=deal_id).values_list("state", flat=True).first()
    done = {"captured": 0, "voided": 0, "expired": 0}
    if state in TIPPED_STATES:
        for order_id in (
            Order.objects.filter(deal_id=deal_id, state=OrderState.AUTHORIZED)
            .filter(COUNTED_TEAM)
            .order_by("id")
            .values_list("id", flat=True)
        ):
            done["captured"] += int(order_hold_step(order_capture, order_id=order_id))
    if state in ENDED_STATES:
        # A reservation still unpaid when the deal ends: its deal failed, or its time ran out with it.
        unpaid = (
            OrderEndReason.DEAL_FAILED if state == DealState.FAILED else OrderEndReason.RESERVATION_EXPIRED
        )
        for team_id in Team.objects.filter(deal_id=deal_id, state=TeamState.OPEN).values_list(
            "id", flat=True
        ):
            done["voided"] += team_expire(team_id=team_id, force=True)
        for order_id in Order.objects.filter(deal_id=deal_id, state=OrderState.PENDING).values_list(
            "id", flat=True
        ):
            done["expired"] += int(order_reservation_expire(order_id=order_id, force=True, reason=unpaid))
    to_void = Q(state=OrderState.VOIDING)  # a voiding order keeps the reason it was given
    # The holds this state releases: every one of a failed deal, and those of teams that never filled.
    reason = OrderEndReason.DEAL_FAILED if state == DealState.FAILED else OrderEndReason.TEAM_EXPIRED
    if state == DealState.FAILED:
        to_void |= Q(state=OrderState.AUTHORIZED)
    elif state == DealState.CLOSED:  # a capture that failed above is tried again, never voided
        to_void |= Q(state=OrderState.AUTHORIZED, team__state__in=UNFILLED_TEAM_STATES)
    for order_id in (
        Order.objects.filter(to_void, deal_id=deal_id).order_by("id").values_list("id", flat=True)
    ):
        done["voided"] += int(order_hold_step(order_void, order_id=order_id, reason=reason))
    return done


def deals_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Run every transition that is due; the safety net for lost or not-yet-run scheduled tasks."""
    from weituan.deals.integrations import deals_announce_owed
    from weituan.deals.services.refunds import refunds_retry_due
    from weituan.deals.services.vouchers import vouchers_expire_due

    now = now or timezone.now()
    counts = {
        "started": 0, "tipped": 0, "ended": 0, "teams_expired": 0, "rescue_offers": 0,
        "reservations_expired": 0, "settled": 0, "voided": 0, "refunds_completed": 0, "vouchers_expired": 0,
        "selling_again": 0, "gates_unstuck": 0, "announced": 0,
    }  # fmt: skip
    # First what earlier transitions still owe (a crash between a transition and its captures or voids,
    # or a gateway that did not do them), so that what falls due below is asked of a gateway once per
    # sweep: deals with holds to capture or void, and teams that expired with a hold not released yet.
    # A tipped deal owes its capture to every hold counted among its buyers, those of a team that filled
    # after it tipped included; a void under way is owed whatever the deal's state.
    owed = (
        Order.objects.filter(
            Q(state=OrderState.VOIDING)
            | Q(state=OrderState.AUTHORIZED, deal__state__in=ENDED_STATES)
            | (
                Q(state=OrderState.AUTHORIZED, deal__state__in=(DealState.TIPPED, DealState.SOLD_OUT))
                & COUNTED_TEAM
            )
        )
        .values_list("deal_id", flat=True)
        .distinct()
    )
    for deal_id in list(owed):
        counts["voided"] += deal_settle(deal_id=deal_id)["voided"]
        counts["settled"] += 1
    for team_id in list(
        Order.objects.filter(state=OrderState.AUTHORIZED, team__state=TeamState.EXPIRED)
        .values_list("team_id", flat=True)
        .distinct()
    ):
        counts["voided"] += team_expire(team_id=team_id)
    # Refunds their provider has not confirmed yet (the vouchers due to be refunded come last).
    counts["refunds_completed"] = refunds_retry_due(now=now)
    for deal_id in Deal.objects.filter(state=DealState.SCHEDULED, starts_at__lte=now).values_list(
        "id", flat=True
    ):
        counts["started"] += int(deal_start(deal_id=deal_id, now=now))
    for batch_id in FlashBatch.objects.filter(released_at__isnull=True, release_at__lte=now).values_list(
        "id", flat=True
    ):
        flash_batch_release(batch_id=batch_id, now=now)
    for team_id in Team.objects.filter(state=TeamState.OPEN, expires_at__lte=now).values_list(
        "id", flat=True
    ):
        team_expire(team_id=team_id, now=now)
        counts["teams_expired"] += 1
    # Rescue offers owed: open teams inside the offer's lead time, not offered yet.
    for team in Team.objects.filter(
        state=TeamState.OPEN,
        rescue_offered_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + RESCUE_LEAD,
    ):
        if rescue_offer_at(team) <= now:
            counts["rescue_offers"] += int(team_rescue_offer(team_id=team.id, now=now) > 0)
    for order_id in Order.objects.filter(state=OrderState.PENDING, reserve_expires_at__lte=now).values_list(
        "id", flat=True
    ):
        counts["reservations_expired"] += int(order_reservation_expire(order_id=order_id, now=now))
    # Sold-out deals that units came back to, still in their window: a return moves its deal itself, in
    # its own transaction; this finds any it did not (one left so before that move existed).
    for deal_id in Deal.objects.filter(
        state=DealState.SOLD_OUT, sold__lt=F("released"), ends_at__gt=now
    ).values_list("id", flat=True):
        counts["selling_again"] += int(deal_selling_again(deal_id=deal_id, now=now))
    # Deals on sale whose Redis gate refuses everyone while units are free in the database.
    counts["gates_unstuck"] = stock_gates_unstick(now=now)
    # Deals whose tip check is owed (it is enqueued after an order of a deal with enough takers, or the
    # order that took the last unit, commits, and can be lost with the process): the check counts the
    # buyers whose payment is held or made. A live deal with fewer takers than its tipping point cannot
    # tip, so it is not looked at.
    for deal_id in Deal.objects.filter(
        Q(state=DealState.LIVE, takers__gte=F("tipping_point"))
        | Q(state=DealState.TIPPED, sold__gte=F("max_quantity")),
        ends_at__gt=now,
    ).values_list("id", flat=True):
        counts["tipped"] += int(deal_tip_check(deal_id=deal_id))
    for deal_id in Deal.objects.filter(
        state__in=(DealState.LIVE, DealState.TIPPED, DealState.SOLD_OUT), ends_at__lte=now
    ).values_list("id", flat=True):
        deal_end(deal_id=deal_id, now=now)
        counts["ended"] += 1
    counts["vouchers_expired"] = vouchers_expire_due(now=now)
    # Last, once the deals that ended have been moved: the deals on sale without their announcement.
    counts["announced"] = deals_announce_owed(now=now)
    return counts
