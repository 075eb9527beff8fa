"""Rows of the deals app: deals and teams, orders and vouchers, the payments ledger, and the
Idempotency-Keys writes keep with their change."""

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
    OrderEndReason,
    OrderState,
    Referral,
    Refund,
    RefundReason,
    RefundState,
    UserDealQuota,
    Voucher,
    VoucherState,
)
from weituan.deals.models.write_keys import WriteKey

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
    "OrderEndReason",
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
    "WriteKey",
]
