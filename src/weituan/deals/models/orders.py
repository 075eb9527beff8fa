"""Orders (each carries its payment hold), per-buyer quotas, vouchers, refunds and referral credits."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from weituan.core.states import StateGraph
from weituan.deals.models.deals import TIPPED_STATES, Deal, Team, TeamState


class OrderState(models.TextChoices):
    PENDING = "pending", "stock reserved, payment not completed"
    AUTHORIZED = "authorized", "payment held"
    VOIDING = "voiding", "hold being released"
    CAPTURED = "captured", "paid"
    VOIDED = "voided", "hold released: cancelled, not paid, or its payment refused"
    EXPIRED = "expired", "reservation expired"
    REFUNDED = "refunded", "refunded"


class OrderEndReason(models.TextChoices):
    """Why an order ended without being paid (voided or expired), as its buyer is told. Set by the
    transition that takes the order out of its deal's buyers, in the same UPDATE; a voiding order keeps
    the reason it was given when its void is recorded."""

    CANCELLED = "cancelled", _("Cancelled")
    PAYMENT_DECLINED = "payment_declined", _("Payment declined")
    PAYMENT_RELEASED = "payment_released", _("Payment released by the provider")
    DEAL_FAILED = "deal_failed", _("Deal did not tip")
    TEAM_EXPIRED = "team_expired", _("Team did not fill")
    RESERVATION_EXPIRED = "reservation_expired", _("Payment not completed in time")
    SWITCHED_SOLO = "switched_solo", _("Switched to the solo price")


# An order is also the lifecycle of its payment hold: authorized ends captured or voided. A hosted
# provider's hold is voiding while the provider is asked to release it: the order has left its deal's
# buyers and given its unit back, can no longer be captured, and its money stays held in the ledger
# until the void is recorded (a wallet's hold, and one the provider ended itself, go to voided at once).
# An order whose capture the provider refuses for good fails the same way: voiding, then voided.
ORDER_GRAPH = StateGraph.declare(
    "order",
    OrderState.PENDING,
    {
        OrderState.PENDING: [OrderState.AUTHORIZED, OrderState.EXPIRED],
        OrderState.AUTHORIZED: [OrderState.CAPTURED, OrderState.VOIDING, OrderState.VOIDED],
        OrderState.VOIDING: [OrderState.VOIDED],
        OrderState.CAPTURED: [OrderState.REFUNDED],
    },
)

# States holding a unit of stock.
STOCK_STATES = (OrderState.PENDING, OrderState.AUTHORIZED, OrderState.CAPTURED)
# States whose payment is held: the ledger's held accounts carry their amounts.
HELD_STATES = (OrderState.AUTHORIZED, OrderState.VOIDING)

# A held or paid order counts towards its deal's buyers (and is owed its capture once the deal has
# tipped) outside a team still waiting to fill; the states of a team whose orders do not count.
COUNTED_TEAM = Q(team__isnull=True) | Q(team__state=TeamState.FILLED)
UNFILLED_TEAM_STATES = (TeamState.OPEN, TeamState.EXPIRED, TeamState.MERGED)
# The orders their buyer may cancel (`order_cancel`): a reservation not paid yet, and a hold its deal
# does not owe its capture (the deal has not tipped, or the order waits in a team that has not filled).
CANCELLABLE = Q(state=OrderState.PENDING) | (
    Q(state=OrderState.AUTHORIZED)
    & (~Q(deal__state__in=TIPPED_STATES) | Q(team__state__in=UNFILLED_TEAM_STATES))
)


class Order(models.Model):
    # Every checkout inserts a row: no index here that another one's leading columns already give
    # (deal: deal + state; buyer: buyer + id), and only team orders in the team's.
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="orders", db_index=False)
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deal_orders", db_index=False
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    quantity = models.PositiveIntegerField()
    gift_quantity = models.PositiveIntegerField(default=0)  # of `quantity`, units bought as gifts
    unit_price = models.PositiveBigIntegerField()
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    gateway = models.CharField(max_length=30, default="wallet")
    payment_ref = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=12, choices=ORDER_GRAPH.choices(), default=OrderState.PENDING)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # Why a voiding, voided or expired order ended (`OrderEndReason`); empty while it has not.
    end_reason = models.CharField(max_length=20, choices=OrderEndReason.choices, blank=True, default="")
    # Set by the client through Idempotency-Key; a retry finds the order instead of buying twice.
    client_key = models.CharField(max_length=255, null=True, blank=True)
    # The short link the buyer came through (a deal post's or a repost hop's), credited with the order.
    share_code = models.CharField(max_length=16, blank=True, default="")
    share_link_id = models.BigIntegerField(null=True, blank=True)
    reserve_expires_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["deal", "state"]),
            models.Index(fields=["buyer", "-id"]),
            models.Index(fields=["state", "reserve_expires_at"]),
            models.Index(fields=["team"], condition=Q(team__isnull=False), name="order_team"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["buyer", "client_key"], name="order_buyer_client_key"),
            models.CheckConstraint(condition=Q(amount=F("unit_price") * F("quantity")), name="order_amount"),
            models.CheckConstraint(condition=Q(gift_quantity__lte=F("quantity")), name="order_gifts_le_qty"),
        ]

    def __str__(self) -> str:
        return f"order {self.id} ({self.state})"


class UserDealQuota(models.Model):
    """Units one buyer holds on one deal, for the per-user and gift limits (moved by conditional UPDATE)."""

    # Indexed by `quota_deal_user`, which leads with it.
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    own = models.PositiveIntegerField(default=0)
    gifts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deal", "user"], name="quota_deal_user")]


class VoucherState(models.TextChoices):
    VALID = "valid"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    REFUNDING = "refunding"  # its refund is asked for: no longer usable, the money not back yet
    REFUNDED = "refunded"


VOUCHER_GRAPH = StateGraph.declare(
    "voucher",
    VoucherState.VALID,
    {
        VoucherState.VALID: [VoucherState.REDEEMED, VoucherState.EXPIRED, VoucherState.REFUNDING],
        # A refund the provider refused leaves the voucher as it would be without it.
        VoucherState.REFUNDING: [VoucherState.REFUNDED, VoucherState.VALID, VoucherState.EXPIRED],
    },
)


class RefundState(models.TextChoices):
    REQUESTED = "requested", "asked of the gateway, not confirmed yet"
    COMPLETED = "completed", "money returned"
    DECLINED = "declined", "refused by the gateway"


REFUND_GRAPH = StateGraph.declare(
    "refund", RefundState.REQUESTED, {RefundState.REQUESTED: [RefundState.COMPLETED, RefundState.DECLINED]}
)


class RefundReason(models.TextChoices):
    BUYER = "buyer", "asked for by the buyer"
    EXPIRY = "expiry", "unredeemed vouchers refunded when they expire"


class Refund(models.Model):
    """One refund of some unredeemed vouchers of an order, asked of the order's gateway as one refund of
    `amount` under its own idempotency key (`refund_key`), until the gateway completes or declines it.
    `retry_at` is when the gateway may be asked next: an attempt under way holds it a while, a failed
    one sets it later.

    A refund the buyer asked for through the API keeps the request's Idempotency-Key (`client_key`, with
    who sent it): a retry of that request finds the refund it wrote, even once the first answer (the
    provider not confirming yet) is long gone."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=10, choices=RefundReason.choices)
    state = models.CharField(max_length=10, choices=REFUND_GRAPH.choices(), default=RefundState.REQUESTED)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField()
    # When the attempt asking the provider now began; None between attempts.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    # Indexed by `refund_requested_by_key`, which leads with it.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    client_key = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "retry_at"]),
            models.Index(fields=["requested_by", "client_key"], name="refund_requested_by_key"),
        ]

    def __str__(self) -> str:
        return f"refund {self.id} of order {self.order_id} ({self.state})"


class Voucher(models.Model):
    """One unit of a paid order (券). `code` is a secret; whoever holds it may use the voucher."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="vouchers")
    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="vouchers")
    holder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="vouchers")
    code = models.CharField(max_length=32, unique=True)
    state = models.CharField(max_length=10, choices=VOUCHER_GRAPH.choices(), default=VoucherState.VALID)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The refund that took it (refunding or refunded), or the last one its provider refused.
    refund = models.ForeignKey(
        Refund, null=True, blank=True, on_delete=models.PROTECT, related_name="vouchers"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["holder", "-id"]), models.Index(fields=["state", "expires_at"])]


class Referral(models.Model):
    """An invitation: `invitee` followed `inviter`'s invite link; credit once their first order is paid."""

    inviter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    invitee = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    invited_at = models.DateTimeField(auto_now_add=True)
    credited_at = models.DateTimeField(null=True, blank=True)
    credit = models.PositiveBigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="CNY")
