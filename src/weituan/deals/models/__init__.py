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
    REFUND_GRAPH,
    VOUCHER_GRAPH,
    Order,
    OrderState,
    Referral,
    Refund,
    RefundReason,
    RefundState,
    UserDealQuota,
    Voucher,
    VoucherState,
)

__all__ = [
    "DEAL_GRAPH",
    "ORDER_GRAPH",
    "REFUND_GRAPH",
    "TEAM_GRAPH",
    "VOUCHER_GRAPH",
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
    "Refund",
    "RefundPolicy",
    "RefundReason",
    "RefundState",
    "Team",
    "TeamState",
    "UserDealQuota",
    "Voucher",
    "VoucherState",
]
