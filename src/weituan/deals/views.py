"""Shopper pages: deal page and live card, checkout, team status, my orders, vouchers and wallet."""

import logging
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from weituan.accounts import invites
from weituan.core.errors import STORE_OUTAGES, ServiceError, store_unreachable
from weituan.core.money import MINOR_UNITS, Money
from weituan.core.redis import REDIS_UNREACHABLE, unreachable_logged
from weituan.deals import queries
from weituan.deals.facade import deal_card
from weituan.deals.labels import ORDER_STATE_LABELS, state_label
from weituan.deals.models import AccountKind, OrderState, TeamState
from weituan.deals.pages import (
    Page,
    PageAsked,
    cursor_of,
    deals_on_sale_page,
    orders_of_buyer_page,
    vouchers_of_holder_page,
)
from weituan.deals.qr import CONTENT_TYPES, voucher_qr_image
from weituan.deals.refusals import refusal_text
from weituan.deals.services.gateways import gateways_offered
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.refunds import order_refund, refund_refusal
from weituan.deals.services.shares import SHARE_CODE_MAX, invite_share_code, team_share_code
from weituan.deals.services.teams import team_merge, team_rescue_options, team_switch_solo
from weituan.deals.services.vouchers import voucher_code_display
from weituan.deals.services.wallet import TOP_UP_PROFILES, wallet_top_up
from weituan.deals.templatetags.deals_tags import moment_text
from weituan.tracking import facade as tracking

logger = logging.getLogger(__name__)

SHARE_SESSION_KEY = "deal_shares"  # deal id -> the short-link code the visitor arrived through


def _user(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


DEALS_PER_PAGE = 50
MY_ORDERS_PER_PAGE = 100
MY_VOUCHERS_PER_PAGE = 100
_CURSORS = ("max_id", "since_id", "min_id")


def page_asked(request: HttpRequest) -> PageAsked:
    """The cursors of the page a list page is asked for (`max_id`: older, `min_id`: newer)."""
    return PageAsked(max_id=cursor_of(request.GET.get("max_id")), min_id=cursor_of(request.GET.get("min_id")))


def _with_cursor(request: HttpRequest, name: str | None = None, value: int | None = None) -> str:
    """This page's address with its query parameters (the list's filters) kept but the cursors, and
    `name`=`value` as the cursor (none: the list's start)."""
    kept = [(key, item) for key, items in request.GET.lists() if key not in _CURSORS for item in items]
    if name is not None:
        kept.append((name, str(value)))
    return f"{request.path}?{urlencode(kept)}" if kept else request.path


def pager(request: HttpRequest, page: Page[Any]) -> dict[str, str | None]:
    """The links of a list page to the pages on either side of `page` (None where there is none)."""
    return {
        "newer_url": _with_cursor(request, "min_id", page.newer_id) if page.newer_id is not None else None,
        "older_url": _with_cursor(request, "max_id", page.older_id) if page.older_id is not None else None,
    }


def page_gone(request: HttpRequest, page: Page[Any]) -> HttpResponse | None:
    """A link to a page that has nothing left on it (the items beyond its cursor are gone, or the
    cursor was made up): back to the list's start, its filters kept."""
    if page.items or not any(request.GET.get(name) for name in _CURSORS):
        return None
    return redirect(_with_cursor(request))


def deal_list(request: HttpRequest) -> HttpResponse:
    page = deals_on_sale_page(limit=DEALS_PER_PAGE, **page_asked(request))
    gone = page_gone(request, page)
    if gone is not None:
        return gone
    cards = [deal_card(deal.id) for deal in page.items]
    return render(
        request, "deals/list.html", {"cards": [card for card in cards if card], **pager(request, page)}
    )


# Never kept by the browser: the page holds the buyer's wallet and a one-time checkout token, so coming
# back to it after buying draws it afresh (a new token: buying again is a new order, not the old one's
# repeat, and the wallet shows what is left).
@never_cache
def deal_page(request: HttpRequest, deal_id: int) -> HttpResponse:
    try:
        deal = queries.deal_for_viewer(deal_id=deal_id, user=_user(request))
    except ServiceError:
        raise Http404("No such deal") from None
    _share_remember(request, deal.id)
    tracking.event_record(
        event=tracking.EventName.DEAL_VIEW,
        user_id=request.user.pk,
        visitor_id=tracking.visitor_id_of(request),
        deal_id=deal.id,
        url=request.build_absolute_uri(),
    )
    open_teams = deal.teams.filter(state="open").select_related("leader").order_by("expires_at")[:10]
    return render(
        request,
        "deals/deal.html",
        {
            "deal": deal,
            "card": deal_card(deal.id),
            "open_teams": open_teams,
            "deal_price": Money(deal.deal_price, deal.currency),
            "team_price": Money(deal.team_price, deal.currency) if deal.team_price else None,
            "wallet_available": Money(
                queries.wallet_of(user=request.user, currency=deal.currency).available, deal.currency
            )
            if _user(request)
            else None,
            "gateways": gateways_offered(),
            "can_top_up": settings.PROFILE in TOP_UP_PROFILES,
            "checkout_token": form_token(),
        },
    )


def _share_remember(request: HttpRequest, deal_id: int) -> None:
    """Arrived through someone's short link (to the deal or to one of its teams): remember whose, so the
    order placed from here can be credited to that share (the session survives logging in)."""
    share_code = request.GET.get("wt_s", "")
    if share_code.isascii() and share_code.isalnum() and len(share_code) <= SHARE_CODE_MAX:
        shares = dict(request.session.get(SHARE_SESSION_KEY, {}))
        shares[str(deal_id)] = share_code
        request.session[SHARE_SESSION_KEY] = shares


def deal_card_partial(request: HttpRequest, deal_id: int) -> HttpResponse:
    card = deal_card(deal_id)
    if card is None:
        raise Http404("No such deal")
    # A card shown in a post keeps leading through that post (see the web app's `post_deal`).
    via = request.GET.get("via", "")
    return render(request, "deals/_card.html", {"card": card, "via": int(via) if via.isdecimal() else None})


@login_required
@require_POST
def checkout(request: HttpRequest, deal_id: int) -> HttpResponse:
    team_raw = request.POST.get("team") or None
    try:
        quantity = int(request.POST.get("quantity", "1"))
        gifts = int(request.POST.get("gift_quantity", "0") or 0)
        seen_price = int(request.POST["unit_price"]) if request.POST.get("unit_price") else None
        team: str | int | None = team_raw if team_raw in (None, "start") else int(team_raw or 0)
    except ValueError:
        messages.error(request, _("Quantity and price must be whole numbers"))
        return redirect("deals:deal", deal_id=deal_id)
    if quantity < 1 or not 0 <= gifts <= quantity:
        messages.error(request, _("Buy at least one unit; the gifts are some of the units you buy."))
        return redirect("deals:deal", deal_id=deal_id)
    try:
        order = order_place(
            deal_id=deal_id,
            buyer=request.user,
            quantity=quantity,
            gift_quantity=gifts,
            team=team,
            expected_unit_price=seen_price,
            client_key=request.POST.get("checkout_token") or None,
            gateway=request.POST.get("gateway") or "wallet",
            share_code=str(request.session.get(SHARE_SESSION_KEY, {}).get(str(deal_id), "")),
        )
    except ServiceError as exc:
        messages.error(request, _checkout_refusal_text(exc, deal_id, request.user))
        if isinstance(team, int) and request.POST.get("back") == "team":
            # Joining from the team's own page (a friend's link): back there, where the wallet can be
            # topped up and the team joined, not to the deal page with the team to find again.
            return redirect("deals:team", team_id=team)
        return redirect("deals:deal", deal_id=deal_id)
    except STORE_OUTAGES as exc:
        return _checkout_unavailable(request, deal_id, exc)
    messages.success(request, _placed_text(order))
    if order.team_id:
        return redirect("deals:team", team_id=order.team_id)
    return redirect("deals:my_orders")


# What a checkout form sends, sent again as it was by the page of a checkout that met a store outage.
CHECKOUT_FIELDS = ("quantity", "gift_quantity", "unit_price", "team", "gateway", "checkout_token")


def _checkout_unavailable(request: HttpRequest, deal_id: int, error: Exception) -> HttpResponse:
    """A checkout that met Redis or the database away: 503 with Retry-After, and a page whose button
    sends the same order again under the same checkout token. Whether the order was placed may be
    unknown (the connection ended as it committed), and the token makes it placed once however many
    times it is sent; a fresh deal page would make a new token, and could place it twice."""
    if isinstance(error, REDIS_UNREACHABLE):
        unreachable_logged(logger, "checkouts answered 503", error)
    else:
        logger.error("checkout of deal %s: database error; answered 503", deal_id, exc_info=error)
    refusal = store_unreachable()
    fields = [(name, request.POST[name]) for name in CHECKOUT_FIELDS if request.POST.get(name)]
    response = render(
        request,
        "deals/checkout_unavailable.html",
        {"deal_id": deal_id, "fields": fields},
        status=refusal.status,
    )
    for name, value in refusal.headers().items():
        response[name] = value
    return response


def team_page(request: HttpRequest, team_id: int) -> HttpResponse:
    try:
        team = queries.team_for_viewer(team_id=team_id)
    except ServiceError:
        raise Http404("No such team") from None
    _share_remember(request, team.deal_id)
    user = _user(request)
    my_order = team.orders.filter(buyer=user).order_by("-id").first() if user else None
    is_open = team.state == TeamState.OPEN
    # The deal's merchant cannot buy it (`own_deal`): their page offers their merchant links instead.
    is_merchant = user is not None and user.id == team.deal.merchant_id
    card = deal_card(team.deal_id) if is_open else None
    return render(
        request,
        "deals/team.html",
        {
            "team": team,
            "members": queries.team_member_names(team=team),
            "share_url": _team_share_url(request, team) if is_open else "",
            "can_join": card is not None and card.on_sale and my_order is None and not is_merchant,
            "is_merchant": is_merchant,
            "rescue": team_rescue_options(team=team) if user and user.id == team.leader_id else [],
            "my_order": my_order,
            "team_price": Money(team.deal.team_price or 0, team.deal.currency),
            # What the member's order would hold at the solo price, should they switch to it.
            "solo_price": Money(
                team.deal.deal_price * (my_order.quantity if my_order else 1), team.deal.currency
            ),
            "checkout_token": form_token(),
            "wallet_available": Money(
                queries.wallet_of(user=user, currency=team.deal.currency).available, team.deal.currency
            )
            if user
            else None,
            "can_top_up": settings.PROFILE in TOP_UP_PROFILES,
        },
    )


def _team_share_url(request: HttpRequest, team: Any) -> str:
    """The viewer's own short link to the team, so the friends it brings are credited to their share;
    a signed-out viewer, whom no share can be credited to, gets the page's address."""
    page = request.build_absolute_uri(reverse("deals:team", args=[team.id]))
    if not request.user.is_authenticated:
        return page
    try:
        code = team_share_code(team=team, sharer_id=request.user.pk, site_url=request.build_absolute_uri("/"))
    except ServiceError:
        return page
    return request.build_absolute_uri(reverse("tracking:short_link", args=[code]))


def _checkout_refusal_text(error: ServiceError, deal_id: int, buyer: Any) -> str:
    """A refused checkout as the buyer is told; a flash sale out of units says when more go on sale
    (one whose first batch is still to come, that it has not started), and a buyer over the per-person
    limit how many they already have and may still buy (someone who bought 1 of a limit of 2 and asks
    for 2 would otherwise read "you may buy 2" and be puzzled)."""
    card = deal_card(deal_id) if error.code == "sold_out" else None
    if card is not None and card.next_batch_at is not None:
        batch = {"n": card.next_batch_quantity, "at": moment_text(card.next_batch_at)}
        if card.first_batch:
            return _("This sale has not started. Its first batch of %(n)s goes on sale at %(at)s.") % batch
        return _("This batch is sold out. The next batch of %(n)s goes on sale at %(at)s.") % batch
    text = refusal_text(error)
    limit = error.details.get("per_user_limit")
    if error.code == "per_user_limit" and isinstance(limit, int):
        held = queries.units_held(deal_id=deal_id, user=buyer)
        if held:
            left = max(limit - held, 0)
            more = ngettext(
                "You already have %(held)d; you may buy %(left)d more.",
                "You already have %(held)d; you may buy %(left)d more.",
                left,
            ) % {"held": held, "left": left}
            # Two sentences: a space between them in English, none in Chinese.
            text = _("%(refusal)s %(more)s") % {"refusal": text, "more": more}
    return text


def _placed_text(order: Any) -> str:
    """What the buyer is told once their order is placed, by where its payment stands."""
    facts = {"id": order.id, "amount": Money(order.amount, order.currency)}
    if order.state == OrderState.CAPTURED:
        return _("Order %(id)s is paid (%(amount)s): your vouchers are in My vouchers.") % facts
    if order.state == OrderState.AUTHORIZED:
        return _("Order %(id)s is placed: %(amount)s is held and paid once the deal is on.") % facts
    return _("Order %(id)s is placed: %(state)s.") % {
        **facts,
        "state": state_label(ORDER_STATE_LABELS, order.state),
    }


@login_required
@require_POST
def team_merge_view(request: HttpRequest, team_id: int) -> HttpResponse:
    into_id = request.POST.get("into", "")
    if not into_id.isdecimal():
        messages.error(request, _("Choose a team to merge into."))
        return redirect("deals:team", team_id=team_id)
    try:
        into = team_merge(
            team_id=team_id,
            into_id=int(into_id),
            by=request.user,
            client_key=request.POST.get("form_token") or None,
        )
    except ServiceError as exc:
        merge_refusals = {
            "not_found": _("That team cannot be merged into: choose another."),
            "team_closed": _("Both teams must still be open."),
        }
        messages.error(request, str(merge_refusals.get(exc.code, refusal_text(exc))))
        return redirect("deals:team", team_id=team_id)
    messages.success(request, _("Your team has joined @%(name)s's team.") % {"name": into.leader.username})
    return redirect("deals:team", team_id=into.id)


@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    """The buyer's orders, newest first, a page at a time (older and newer pages by link)."""
    page = orders_of_buyer_page(user=request.user, limit=MY_ORDERS_PER_PAGE, **page_asked(request))
    gone = page_gone(request, page)
    if gone is not None:
        return gone
    for order in page.items:
        # Refund is offered only where the deal's policy lets it succeed now (read without a query).
        order.refundable = not order.refund_pending and refund_refusal(order=order) is None  # type: ignore[attr-defined]
    return render(request, "deals/my_orders.html", {"orders": page.items, **pager(request, page)})


@login_required
@require_POST
def order_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    actions = {"cancel": order_cancel, "refund": order_refund, "solo": team_switch_solo}
    if action not in actions:
        raise Http404("No such action")
    done = {
        "cancel": _("Order %(id)s is cancelled; its payment hold is released."),
        "refund": _("Order %(id)s: its unused vouchers are refunded."),
        "solo": _("Order %(id)s left the team: a new order holds the solo price."),
    }
    try:
        if action == "solo":
            team_switch_solo(order_id=order_id, by=request.user)
        else:
            actions[action](order_id=order_id, by=request.user)
        messages.success(request, done[action] % {"id": order_id})
    except ServiceError as exc:
        if exc.code == "not_found":
            messages.error(
                request,
                _("No order of yours in a team has this number.")
                if action == "solo"
                else _("No order of yours has this number."),
            )
        else:
            messages.error(request, refusal_text(exc))
    return redirect("deals:my_orders")


@login_required
def my_vouchers(request: HttpRequest) -> HttpResponse:
    """The holder's vouchers, newest first, a page at a time."""
    page = vouchers_of_holder_page(user=request.user, limit=MY_VOUCHERS_PER_PAGE, **page_asked(request))
    gone = page_gone(request, page)
    if gone is not None:
        return gone
    vouchers = [(voucher, voucher_code_display(voucher.code)) for voucher in page.items]
    return render(request, "deals/my_vouchers.html", {"vouchers": vouchers, **pager(request, page)})


@login_required
def my_wallet(request: HttpRequest) -> HttpResponse:
    """The wallet, and the shopper's invite link with what it has earned (credit lands here). In dev and
    demo mode the wallet takes play money, so a new shopper can buy; they go back where they came from."""
    if request.method == "POST":
        return _top_up(request)
    wallet = queries.wallet_of(user=request.user, currency=page_currency(request.GET.get("currency")))
    held_in = queries.account_currencies(user=request.user, kinds=(AccountKind.WALLET, AccountKind.HELD))
    referrals = queries.referrals_of_inviter(user=request.user, currency=wallet.currency)
    code = invite_share_code(inviter=request.user, site_url=request.build_absolute_uri("/"))
    return render(
        request,
        "deals/my_wallet.html",
        {
            "currency": wallet.currency,
            # The other currencies the shopper has money in (or had): each a link to its own wallet.
            "other_currencies": [currency for currency in held_in if currency != wallet.currency],
            "available": Money(wallet.available, wallet.currency),
            "held": Money(wallet.held, wallet.currency),
            "invite_url": request.build_absolute_uri(reverse("tracking:short_link", args=[code])),
            "referrals": referrals,
            "referral_credit": Money(settings.DEALS_REFERRAL_CREDIT, wallet.currency),
            "referral_earned": Money(referrals.credit_total, wallet.currency),
            "referral_hours": settings.DEALS_REFERRAL_HOURS,
            "referral_cap": settings.DEALS_REFERRAL_CAP,
            "can_top_up": settings.PROFILE in TOP_UP_PROFILES,
            "top_up_token": form_token(),
            "next": safe_next_path(request.GET.get("next", "")),
        },
    )


def page_currency(raw: str | None) -> str:
    """The currency a wallet or payouts page is about: `raw` when the site knows it, else the yuan."""
    return raw if raw in MINOR_UNITS else "CNY"


def safe_next_path(raw: str) -> str:
    """`raw` if it is a path of this site to go back to after a form, else ""."""
    if raw.startswith("/") and url_has_allowed_host_and_scheme(raw, allowed_hosts=None):
        return raw
    return ""


def form_token() -> str:
    """A key for the forms of one page shown (each form adds its own suffix): sent twice (a double
    click, a resent form), a form does its work once."""
    return uuid.uuid4().hex


def _top_up(request: HttpRequest) -> HttpResponse:
    currency = page_currency(request.POST.get("currency"))
    wallet_page = reverse("deals:my_wallet")
    if currency != "CNY":
        wallet_page += f"?{urlencode({'currency': currency})}"
    back = safe_next_path(request.POST.get("next", "")) or wallet_page
    try:
        whole = int(request.POST.get("amount", ""))
        amount = Money(whole * MINOR_UNITS[currency], currency)
    except ValueError:
        if currency == "CNY":
            messages.error(request, _("Enter a whole number of yuan."))
        else:
            messages.error(request, _("Enter a whole amount in %(currency)s.") % {"currency": currency})
        return redirect(back)
    try:
        key = request.POST.get("top_up_token") or None
        wallet_top_up(user=request.user, amount=amount.amount, currency=currency, key=key)
    except ServiceError as exc:
        messages.error(request, refusal_text(exc))
        return redirect(back)
    messages.success(request, _("%(amount)s added to your wallet.") % {"amount": amount})
    return redirect(back)


@login_required
def voucher_qr(request: HttpRequest, code: str, fmt: str) -> HttpResponse:
    """The voucher's QR code for its holder or the deal's merchant (PNG or SVG); the code is the secret,
    so nobody else sees it."""
    if fmt not in CONTENT_TYPES:
        raise Http404("No such format")
    try:
        voucher = queries.voucher_for_holder_or_merchant(code=code, user=request.user)
    except ServiceError:
        raise Http404("No such voucher") from None
    image, content_type = voucher_qr_image(code=voucher.code, kind=fmt)
    response = HttpResponse(image, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


def invite(request: HttpRequest, username: str) -> HttpResponse:
    """A friend's invite link. A signed-out visitor is asked to sign up, and the inviter is kept in
    their session until they sign up or log in; a signed-in one is taken as invited now. Either way
    only a new customer earns the inviter credit (see `referral_record`)."""
    inviter = invites.inviter_by_code(username)
    if inviter is None:
        raise Http404("No such user")
    if request.user.is_authenticated:
        invites.invitation_accept(inviter_id=inviter.pk, invitee=request.user, new_account=False)
        return redirect("deals:list")
    invites.inviter_remember(request.session, inviter_id=inviter.pk)
    messages.info(request, _("@%(name)s invited you to Weituan.") % {"name": inviter.username})
    return redirect(f"{reverse('accounts:signup')}?{urlencode({'next': reverse('deals:list')})}")
