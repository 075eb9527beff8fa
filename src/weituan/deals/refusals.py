"""The deal pages' words for a refusal of the deals services, in the page's language, with its facts.

Services speak English with figures in minor units, as the API does; a shopper or a merchant on a page
reads a sentence in their language with amounts as money ("¥60.00"). A code with no sentence here falls
back to the site's common ones (`error_text`), then to the service's own message.
"""

from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from weituan.core.errors import ServiceError
from weituan.core.money import MINOR_UNITS, SYMBOLS, Money
from weituan.web.responses import error_text

# Refusals whose sentence needs no facts.
PLAIN: dict[str, Any] = {
    "sold_out": gettext_lazy("This deal is sold out."),
    "deal_not_selling": gettext_lazy("This deal is not on sale now."),
    "payment_declined": gettext_lazy("The payment was declined."),
    "gateway_unavailable": gettext_lazy(
        "The payment provider did not answer. Nothing was charged twice: try again in a moment."
    ),
    "unknown_gateway": gettext_lazy("Choose one of the ways to pay offered here."),
    "own_deal": gettext_lazy("You cannot buy your own deal."),
    "team_quantity": gettext_lazy("A team member buys one unit."),
    "not_team_deal": gettext_lazy("This deal has no team price."),
    "team_closed": gettext_lazy("This team is closed and takes no more members."),
    "already_in_team": gettext_lazy("You are already in this team."),
    "team_no_room": gettext_lazy("The other team has no room for everyone."),
    "team_overlap": gettext_lazy("Someone in your team is already in that one: choose another team."),
    "not_team_leader": gettext_lazy("Only the team's leader can merge it."),
    "not_switchable": gettext_lazy("Only a held order in an open team can switch to the solo price."),
    "gateway_unsupported": gettext_lazy("Only an order paid from the wallet can switch to the solo price."),
    "not_cancellable": gettext_lazy(
        "This order can no longer be cancelled; once paid, it can be refunded under the deal's refund policy."
    ),
    "refund_declined": gettext_lazy(
        "The payment provider refused the refund; your vouchers are as they were."
    ),
    "refund_pending": gettext_lazy("Your refund is recorded and will be completed automatically."),
    "refund_in_progress": gettext_lazy(
        "Your refund is being completed right now. Look at this order again in a moment."
    ),
    "idempotency_mismatch": gettext_lazy("This form was already sent. Reload the page and try again."),
    "voucher_not_found": gettext_lazy("No voucher has this code. Check it and try again."),
    "voucher_refunded": gettext_lazy("This voucher was refunded"),
    "not_your_deal": gettext_lazy("This belongs to another merchant's deal."),
    "not_merchant": gettext_lazy("Only verified merchants can sell deals"),
    "already_published": gettext_lazy("This deal is already published."),
    "deal_not_draft": gettext_lazy("Only a draft can be edited; this deal is already published"),
    "top_up_disabled": gettext_lazy("Top-ups are only available in dev and demo mode."),
    "deal_window_over": gettext_lazy("This deal's window has already ended: change its dates first."),
}

REFUND_REASONS: dict[str, Any] = {
    "not_paid": gettext_lazy("Only a paid order can be refunded."),
    "on_expiry": gettext_lazy("This deal refunds unused vouchers automatically when they expire."),
    "nothing_to_refund": gettext_lazy("Every voucher of this order has been used, refunded or has expired."),
}


# A refused deal's problems (`problem_codes` of `invalid_deal`): the editor's field each is about, and
# what the merchant reads beside it.
DEAL_PROBLEMS: dict[str, tuple[str | None, Any]] = {
    "title_required": ("title", gettext_lazy("Give the deal a title.")),
    "too_many_images": ("image", gettext_lazy("A deal shows at most 9 pictures.")),
    "images_not_on_site": ("image", gettext_lazy("Upload the pictures here.")),
    "unknown_currency": ("currency", gettext_lazy("Choose a currency this site knows, such as CNY.")),
    "list_price_range": (
        "list_price",
        gettext_lazy("The list price must be at most 1,000,000,000 (in minor units)."),
    ),
    "deal_price_range": (
        "deal_price",
        gettext_lazy("The deal price must be above 0 and at most the list price."),
    ),
    "max_quantity_range": (
        "max_quantity",
        gettext_lazy("The maximum quantity must be at most 1,000,000,000."),
    ),
    "tipping_point_range": (
        "tipping_point",
        gettext_lazy("The tipping point must be between 1 and the maximum quantity."),
    ),
    "per_user_limit_range": ("per_user_limit", gettext_lazy("The limit per person must be at least 1.")),
    "limits_range": (
        "per_user_limit",
        gettext_lazy("The limit per person and the gifts must each be at most 1,000,000,000."),
    ),
    "voucher_valid_days_range": (
        "voucher_valid_days",
        gettext_lazy("A voucher may be valid for 1 to 3650 days."),
    ),
    "refund_window_days_range": (
        "refund_window_days",
        gettext_lazy("The refund window may be 0 to 365 days."),
    ),
    "window_order": ("ends_at", gettext_lazy("The end must be after the start.")),
    "team_fields_together": (
        "team_price",
        gettext_lazy("Give both a team price and a team size, or neither."),
    ),
    "team_window_range": ("team_window_hours", gettext_lazy("A team may have 1 to 168 hours to fill.")),
    "team_size_range": ("team_size", gettext_lazy("A team has 2 to 50 people.")),
    "team_price_range": ("team_price", gettext_lazy("The team price must be below the deal price.")),
    "refund_policy_unknown": ("refund_policy", gettext_lazy("Choose one of the refund policies.")),
    "flash_batches_total": (
        "flash_batches",
        gettext_lazy("The flash batches must add up to the maximum quantity."),
    ),
    "flash_batch_empty": ("flash_batches", gettext_lazy("Every flash batch needs at least one unit.")),
    "flash_one_per_user": (
        "per_user_limit",
        gettext_lazy("A flash sale sells one unit per person: set the limit to 1 and the gifts to 0."),
    ),
    "flash_batch_after_end": (
        "flash_batches",
        gettext_lazy("Every flash batch must go on sale before the deal ends."),
    ),
}


def deal_problems(error: ServiceError) -> list[tuple[str | None, str]]:
    """The problems of a refused deal as (the editor's field or None, the sentence to show there)."""
    codes = error.details.get("problem_codes")
    if error.code != "invalid_deal" or not isinstance(codes, list):
        return [(None, refusal_text(error))]
    known = [DEAL_PROBLEMS[code] for code in codes if code in DEAL_PROBLEMS]
    if len(known) < len(codes):
        return [(None, error.message)]
    return [(field, str(text)) for field, text in known]


def _whole(amount: int, currency: str) -> str:
    """`amount` (minor units, a whole number of major ones) as a top-up form's bounds say it: ¥100,000."""
    return f"{SYMBOLS.get(currency, currency + ' ')}{amount // MINOR_UNITS[currency]:,}"


def _money(amount: object, currency: object) -> str:
    if isinstance(amount, int) and currency in MINOR_UNITS:
        return Money(amount, str(currency)).format()
    return str(amount)


def _local_time(iso: str, pattern: str) -> str:
    moment = parse_datetime(iso)
    return f"{timezone.localtime(moment):{pattern}}" if moment is not None else iso


def refusal_text(error: ServiceError) -> str:
    """`error` as a deal page tells it."""
    details = error.details
    code = error.code
    if code == "insufficient_balance" and "currency" in details:
        return _("Your wallet has %(balance)s and this order needs %(needed)s.") % {
            "balance": _money(details["balance"], details["currency"]),
            "needed": _money(details["needed"], details["currency"]),
        }
    if code == "price_mismatch" and "currency" in details:
        return _("The price is now %(price)s. Check it and buy again.") % {
            "price": _money(details["unit_price"], details["currency"])
        }
    if (
        code == "invalid_amount"
        and details.get("currency") in MINOR_UNITS
        and isinstance(details.get("most"), int)
    ):
        # A top-up is entered in whole units of its currency: from one of them to the ceiling.
        currency = str(details["currency"])
        return _("Enter an amount from %(least)s to %(most)s.") % {
            "least": _whole(MINOR_UNITS[currency], currency),
            "most": _whole(int(str(details["most"])), currency),
        }
    if code == "sold_out" and details.get("units_left"):
        left = int(str(details["units_left"]))
        return ngettext(
            "Only %(left)d unit of this deal is left.", "Only %(left)d units of this deal are left.", left
        ) % {"left": left}
    if code == "per_user_limit":
        limit, gifts = details.get("per_user_limit"), details.get("gift_limit")
        text = ngettext(
            "You may buy %(limit)d of this deal.", "You may buy %(limit)d of this deal.", int(str(limit))
        ) % {"limit": limit}
        if gifts:
            text += " " + _("Besides, %(gifts)d more as gifts.") % {"gifts": gifts}
        return text
    if code == "refund_not_allowed":
        reason = details.get("reason")
        if reason == "window_closed":
            days = int(str(details["refund_window_days"]))
            if not days:
                return _("This deal takes no refunds.")
            return ngettext(
                "The %(days)d-day refund window has closed.",
                "The %(days)d-day refund window has closed.",
                days,
            ) % {"days": days}
        if reason in REFUND_REASONS:
            return str(REFUND_REASONS[str(reason)])
    if code == "refund_declined" and details.get("provider_message"):
        return _("The payment provider refused the refund (%(why)s); your vouchers are as they were.") % {
            "why": details["provider_message"]
        }
    if code == "already_redeemed":
        return _("Already redeemed on %(when)s by @%(who)s") % {
            "when": _local_time(str(details["redeemed_at"]), "%Y-%m-%d %H:%M"),
            "who": details["redeemed_by"],
        }
    if code == "voucher_expired" and "expires_at" in details:
        return _("This voucher expired on %(day)s") % {
            "day": _local_time(str(details["expires_at"]), "%Y-%m-%d")
        }
    if code == "nothing_to_pay_out":
        if details.get("held"):
            return _("Nothing to pay out yet: %(held)s waits until refunds of it are no longer possible") % {
                "held": details["held"]
            }
        return _("Nothing to pay out")
    if code in PLAIN:
        return str(PLAIN[code])
    return error_text(error)
