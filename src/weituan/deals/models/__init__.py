"""Rows of the deals app: deals and teams, orders and vouchers, and the payments ledger."""

from weituan.deals.models.deals import (
    DEAL_GRAPH,
    TEAM_GRAPH,
    Deal,
    DealState,
    FlashBatch,
    RefundPolicy,
    Team,
    TeamState,
)
from weituan.deals.models.ledger import Account, AccountKind, Entry, Posting
from weituan.deals.models.orders import (
    ORDER_GRAPH,
    Order,
    OrderState,
    Referral,
    UserDealQuota,
    Voucher,
    VoucherState,
)

__all__ = [
    "DEAL_GRAPH",
    "ORDER_GRAPH",
    "TEAM_GRAPH",
    "Account",
    "AccountKind",
    "Deal",
    "DealState",
    "Entry",
    "FlashBatch",
    "Order",
    "OrderState",
    "Posting",
    "Referral",
    "RefundPolicy",
    "Team",
    "TeamState",
    "UserDealQuota",
    "Voucher",
    "VoucherState",
]
