"""Merchant pages: deal editor, live progress, orders, redemptions and payouts."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from weituan.core.errors import ServiceError
from weituan.core.money import Money
from weituan.deals import queries
from weituan.deals.facade import deal_card
from weituan.deals.forms import DealForm
from weituan.deals.models import AccountKind, DealState
from weituan.deals.pages import FIRST_PAGE, orders_of_deal_page, redemptions_of_merchant_page
from weituan.deals.refusals import DEAL_PROBLEMS, deal_problems, refusal_text
from weituan.deals.services.deals import (
    MAX_IMAGES,
    deal_create,
    deal_input_problems,
    deal_publish,
    deal_update,
)
from weituan.deals.services.vouchers import voucher_redeem
from weituan.deals.services.wallet import merchant_payable, merchant_payout
from weituan.deals.views import form_token, page_asked, page_currency, page_gone, pager
from weituan.microblog.queries.posts import media_get_for_owner
from weituan.microblog.services.media import media_upload

DEAL_ORDERS_PER_PAGE = 200
REDEMPTIONS_PER_PAGE = 100


def merchant_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The pages that serve the deals a merchant has: a merchant whose badge an operator took away
    keeps them, so the buyers of its deals still get their vouchers redeemed and it gets paid."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_merchant:  # type: ignore[union-attr]
            messages.error(request, _("Only verified merchants can sell deals"))
            return redirect("accounts:merchant_apply")
        return view(request, *args, **kwargs)

    return wrapped


def verified_merchant_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The pages that make and publish new deals: only a merchant with the V badge."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_verified_merchant:  # type: ignore[union-attr]
            messages.error(request, _("Only verified merchants can sell deals"))
            return redirect("accounts:merchant_apply")
        return view(request, *args, **kwargs)

    return wrapped


def _own_deal(request: HttpRequest, deal_id: int) -> Any:
    try:
        return queries.deal_for_merchant(deal_id=deal_id, user=request.user)
    except ServiceError:
        raise Http404("No such deal") from None


@merchant_required
def deal_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "deals/merchant_deals.html", {"deals": queries.deals_of_merchant(merchant=request.user)}
    )


def _pictures(request: HttpRequest, form: DealForm) -> list[Any] | None:
    """The pictures the deal gets from this form: the ones just chosen, stored as uploads (they go through
    the posts' upload checks, resized; more than a deal shows are refused before any is stored), or,
    with none chosen, those a refused try of the same form stored and the page sent back. None when the
    chosen ones are refused (the refusal is on the form)."""
    if form.has_error("image"):
        return None
    chosen = form.cleaned_data.get("image") or []
    if len(chosen) > MAX_IMAGES:
        form.add_error("image", str(DEAL_PROBLEMS["too_many_images"][1]))
        return None
    try:
        if chosen:
            return [media_upload(owner=request.user, upload=picture) for picture in chosen]
        kept = [int(value) for value in request.POST.getlist("kept_picture") if value.isdigit()]
        return [media_get_for_owner(request.user, media_id) for media_id in kept[:MAX_IMAGES]]
    except ServiceError as exc:
        if exc.code in ("invalid_image", "image_too_large"):
            form.add_error("image", refusal_text(exc))
            return None
        if exc.code == "not_found":  # a kept picture that is not (or no longer) this merchant's
            return []
        raise


def _saved(request: HttpRequest, form: DealForm, pictures: list[Any], deal: Any = None) -> Any:
    """The deal the form creates (or, with `deal`, the draft it changes), or None with the refusal shown
    on the form."""
    media = tuple(picture.id for picture in pictures)
    try:
        if deal is None:
            return deal_create(merchant=request.user, data=form.to_input(media))
        # New pictures replace the draft's; without any the draft keeps its own.
        data = form.to_input(media, ()) if media else form.to_input((), tuple(deal.images))
        return deal_update(deal_id=deal.id, by=request.user, data=data)
    except ServiceError as exc:
        for field, text in deal_problems(exc):  # each problem of the deal beside its field
            form.add_error(field if field in form.fields else None, text)
        return None


def _editor(request: HttpRequest, deal: Any = None) -> tuple[DealForm, Any, list[Any]]:
    """The deal editor's form as posted, what it saved (None when refused or not posted) and, after a
    refusal, the pictures it already stored, which the page shows and sends back with the next try, so
    a merchant who fixes a price does not have to choose the pictures again."""
    initial = DealForm.initial_of(deal) if deal is not None else None
    form = DealForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method != "POST":
        return form, None, []
    valid = form.is_valid()
    pictures = _pictures(request, form)
    if pictures is None or not valid:
        _other_problems_shown(form)
        return form, None, [] if pictures is None else pictures
    saved = _saved(request, form, pictures, deal)
    return form, saved, [] if saved is not None else pictures


def _other_problems_shown(form: DealForm) -> None:
    """A form refused for a field it could not read (a batch line, a date) or a picture also shows the
    problems the deal's own checks find among the fields it did read (a price above the list price, a
    tipping point above the maximum, an end before the start), each beside its field: every problem at
    once, rather than each only after the one before is put right and the form sent again."""
    for code in deal_input_problems(form.fields_read()):
        if code in DEAL_PROBLEMS:
            field, text = DEAL_PROBLEMS[code]
            form.add_error(field if field in form.fields else None, str(text))


@verified_merchant_required
def deal_new(request: HttpRequest) -> HttpResponse:
    form, deal, kept = _editor(request)
    if deal is not None:
        return redirect("deals:merchant_deal", deal_id=deal.id)
    return render(request, "deals/merchant_deal_new.html", {"form": form, "kept_pictures": kept})


@verified_merchant_required
def deal_edit(request: HttpRequest, deal_id: int) -> HttpResponse:
    deal = _own_deal(request, deal_id)
    if deal.state != DealState.DRAFT:
        messages.error(request, _("Only a draft can be edited; this deal is already published"))
        return redirect("deals:merchant_deal", deal_id=deal.id)
    form, saved, kept = _editor(request, deal)
    if saved is not None:
        messages.success(request, _("Draft saved"))
        return redirect("deals:merchant_deal", deal_id=deal.id)
    return render(
        request, "deals/merchant_deal_edit.html", {"form": form, "deal": deal, "kept_pictures": kept}
    )


# Never kept by the browser: a draft's page holds the publish form's one-time token.
@never_cache
@merchant_required
def deal_detail(request: HttpRequest, deal_id: int) -> HttpResponse:
    """The merchant's deal: its figures, and its orders, newest first, a page at a time."""
    deal = _own_deal(request, deal_id)
    page = orders_of_deal_page(deal=deal, limit=DEAL_ORDERS_PER_PAGE, **page_asked(request))
    gone = page_gone(request, page)
    if gone is not None:
        return gone
    return render(
        request,
        "deals/merchant_deal.html",
        {
            "deal": deal,
            "card": deal_card(deal.id),
            "progress": queries.deal_progress(deal=deal),
            "orders": page.items,
            **pager(request, page),
            "publish_token": form_token(),
        },
    )


@merchant_required
def deal_progress(request: HttpRequest, deal_id: int) -> HttpResponse:
    deal = _own_deal(request, deal_id)
    return render(
        request, "deals/_progress.html", {"deal": deal, "progress": queries.deal_progress(deal=deal)}
    )


@verified_merchant_required
@require_POST
def deal_publish_view(request: HttpRequest, deal_id: int) -> HttpResponse:
    """Publish from the deal's page; the form's token makes the button pressed twice (or the form sent
    again after an answer that was lost) publish once and say so both times."""
    try:
        deal = deal_publish(
            deal_id=deal_id, by=request.user, client_key=request.POST.get("form_token") or None
        )
        if deal.post_id:
            messages.success(request, _("Published: your deal card is on your micro-blog."))
        else:  # the post was refused for now (a rate limit); the deal sweep makes it
            messages.success(request, _("Published. Your deal card will be on your micro-blog shortly."))
    except ServiceError as exc:
        messages.error(request, refusal_text(exc))
    return redirect("deals:merchant_deal", deal_id=deal_id)


# Never kept by the browser: the page holds the form's one-time token, so a page drawn again after a
# redemption gets a new one for the next voucher.
@never_cache
@merchant_required
def redeem(request: HttpRequest) -> HttpResponse:
    """Redeem a voucher by its code. The form's one-time token is the redemption's Idempotency-Key: the
    same form sent twice (a double tap, a resend after a lost answer) shows the same success both times
    rather than "already redeemed by you". Below, the redemptions, the latest first, a page at a time
    (after a redemption, the first page, which shows it)."""
    result = None
    refused_code = ""
    if request.method == "POST":
        code = request.POST.get("code", "")
        try:
            result = voucher_redeem(
                code=code, by=request.user, client_key=request.POST.get("form_token") or None
            )
            messages.success(request, _("Redeemed: %(title)s") % {"title": result.deal.title})
        except ServiceError as exc:
            messages.error(request, refusal_text(exc))
            # A mistyped code stays in the box to be corrected, not typed again from the start.
            refused_code = code.strip()[:40]
    asked = page_asked(request) if request.method != "POST" else FIRST_PAGE
    page = redemptions_of_merchant_page(merchant=request.user, limit=REDEMPTIONS_PER_PAGE, **asked)
    gone = page_gone(request, page) if request.method != "POST" else None
    if gone is not None:
        return gone
    return render(
        request,
        "deals/merchant_redeem.html",
        {
            "result": result,
            "refused_code": refused_code,
            "form_token": form_token(),
            "redemptions": page.items,
            **pager(request, page),
        },
    )


@merchant_required
def payouts(request: HttpRequest) -> HttpResponse:
    # Each currency the merchant sells in is paid out on its own page (`?currency=`, the yuan by default).
    currency = page_currency(request.POST.get("currency") or request.GET.get("currency"))
    if request.method == "POST":
        try:
            paid = merchant_payout(merchant=request.user, currency=currency)
            messages.success(request, _("Paid out %(amount)s") % {"amount": Money(paid, currency)})
        except ServiceError as exc:
            messages.error(request, refusal_text(exc))
        page = reverse("deals:merchant_payouts")
        return redirect(page if currency == "CNY" else f"{page}?{urlencode({'currency': currency})}")
    payable = merchant_payable(merchant=request.user, currency=currency)
    sold_in = queries.account_currencies(user=request.user, kinds=(AccountKind.MERCHANT_PAYABLE,))
    return render(
        request,
        "deals/merchant_payouts.html",
        {
            "currency": currency,
            "other_currencies": [other for other in sold_in if other != currency],
            "payable": Money(payable.balance, currency),
            "available": Money(payable.available, currency),
            "held_back": Money(min(payable.held_back, max(payable.balance, 0)), currency),
            "payouts": [
                {"at": row["posting__created_at"], "amount": Money(-row["amount"], currency)}
                for row in queries.payouts_of_merchant(merchant=request.user, currency=currency)
            ],
        },
    )
