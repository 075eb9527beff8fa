"""Refusals of the deals app, each with a stable code a client can act on."""

from weituan.core.errors import Conflict, PermissionDenied, ServiceError, ValidationFailed


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
    """The payment gateway said no (or, as `GatewayUnavailable`, nothing that could be relied on)."""

    code = "payment_declined"
    status = 402


class GatewayUnavailable(PaymentDeclined):
    """A hosted provider could not be reached, failed (5xx) or did not answer in time: whether it did what
    it was asked is unknown, and asking again with the same idempotency key is safe."""

    code = "gateway_unavailable"
    status = 503


class PriceMismatch(ValidationFailed):
    code = "price_mismatch"


class NotYourDeal(PermissionDenied):
    code = "not_your_deal"


class RefundRefused(Conflict):
    code = "refund_not_allowed"


class NotCancellable(Conflict):
    """The order is past being withdrawn (paid, being paid, or already ended): a refund may still apply."""

    code = "not_cancellable"


class RefundDeclined(Conflict):
    """The payment provider refused to return the money: the vouchers are as they were."""

    code = "refund_declined"


class RefundPending(ServiceError):
    """The refund is recorded but its provider did not confirm it: it is asked again until it does."""

    code = "refund_pending"
    status = 503


class RefundInProgress(RefundPending):
    """Another request is asking the provider for this very refund now: its answer is the one to read."""

    code = "refund_in_progress"
    status = 409


class UnknownGateway(ValidationFailed):
    code = "unknown_gateway"


def insufficient_balance(*, balance: int, needed: int, currency: str) -> InsufficientBalance:
    """The refusal of an order the buyer's wallet cannot pay for, with the figures a page needs to say
    how much is missing (`balance` and `needed`, in minor units of `currency`)."""
    return InsufficientBalance(
        f"Your wallet holds {balance} and this order needs {needed} ({currency} minor units)",
        balance=balance,
        needed=needed,
        currency=currency,
    )
