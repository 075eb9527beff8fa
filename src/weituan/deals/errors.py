"""Refusals of the deals app, each with a stable code a client can act on."""

from weituan.core.errors import Conflict, PermissionDenied, ValidationFailed


class SoldOut(Conflict):
    code = "sold_out"


class LimitReached(Conflict):
    code = "per_user_limit"


class DealNotSelling(Conflict):
    code = "deal_not_selling"


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    status = 402


class PaymentDeclined(Conflict):
    code = "payment_declined"
    status = 402


class PriceMismatch(ValidationFailed):
    code = "price_mismatch"


class NotYourDeal(PermissionDenied):
    code = "not_your_deal"


class RefundRefused(Conflict):
    code = "refund_not_allowed"


class UnknownGateway(ValidationFailed):
    code = "unknown_gateway"
