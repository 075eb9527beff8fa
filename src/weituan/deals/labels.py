"""What the pages call each state of a deal, an order, a voucher and a team, in the page's language.

The states themselves are stable codes the API returns as they are; people read these words instead.
"""

from typing import Any

from django.utils.translation import gettext_lazy as _

from weituan.deals.models import DealState, OrderState, TeamState, VoucherState

DEAL_STATE_LABELS: dict[str, Any] = {
    DealState.DRAFT: _("Draft"),
    DealState.SCHEDULED: _("Not started yet"),
    DealState.LIVE: _("On sale"),
    DealState.TIPPED: _("Deal is on"),
    DealState.SOLD_OUT: _("Sold out"),
    DealState.CLOSED: _("Ended"),
    DealState.FAILED: _("Did not tip"),
}

ORDER_STATE_LABELS: dict[str, Any] = {
    OrderState.PENDING: _("Awaiting payment"),
    OrderState.AUTHORIZED: _("Payment held"),
    OrderState.VOIDING: _("Releasing the hold"),
    OrderState.CAPTURED: _("Paid"),
    OrderState.VOIDED: _("Hold released"),
    OrderState.EXPIRED: _("Payment not completed in time"),
    OrderState.REFUNDED: _("Refunded"),
}

VOUCHER_STATE_LABELS: dict[str, Any] = {
    VoucherState.VALID: _("Ready to use"),
    VoucherState.REDEEMED: _("Used"),
    VoucherState.EXPIRED: _("Expired"),
    VoucherState.REFUNDING: _("Being refunded"),
    VoucherState.REFUNDED: _("Refunded"),
}

TEAM_STATE_LABELS: dict[str, Any] = {
    TeamState.OPEN: _("Open"),
    TeamState.FILLED: _("Team is full"),
    TeamState.EXPIRED: _("Did not fill"),
    TeamState.MERGED: _("Merged into another team"),
}


def state_label(labels: dict[str, Any], state: str) -> str:
    """The word for `state`; a state with no word yet is shown as its code rather than hidden."""
    return str(labels.get(state, state))
