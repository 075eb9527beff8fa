"""Refunds a buyer asks for, checked against the deal's refund policy."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from weituan.deals.errors import RefundRefused
from weituan.deals.models import Order, OrderState, RefundPolicy, VoucherState
from weituan.deals.services.orders import order_for_buyer
from weituan.deals.services.vouchers import voucher_refund


def refund_allowed(*, order: Order) -> tuple[bool, str]:
    """Whether the buyer may have this order refunded now, and why not."""
    deal = order.deal
    if order.state != OrderState.CAPTURED:
        return False, f"This order is {order.state}; only a paid order can be refunded"
    if deal.refund_policy == RefundPolicy.ON_EXPIRY:
        return False, "This deal refunds unredeemed vouchers automatically when they expire"
    if deal.refund_policy == RefundPolicy.WINDOW:
        limit = (order.captured_at or order.created_at) + timedelta(days=deal.refund_window_days)
        if timezone.now() > limit:
            return False, f"The {deal.refund_window_days}-day refund window has closed"
    if not order.vouchers.filter(state=VoucherState.VALID).exists():
        return False, "Every voucher of this order has been used or has expired"
    return True, ""


def order_refund(*, order_id: int, by: Any) -> Order:
    """Refund every unredeemed voucher of the buyer's order, if the deal's policy allows it now."""
    order = order_for_buyer(order_id=order_id, user=by)
    allowed, reason = refund_allowed(order=order)
    if not allowed:
        raise RefundRefused(reason)
    for voucher_id in order.vouchers.filter(state=VoucherState.VALID).values_list("id", flat=True):
        voucher_refund(voucher_id=voucher_id)
    order.refresh_from_db()
    return order
