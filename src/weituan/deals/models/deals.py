"""Deals, their flash-sale batches and their teams (拼团), each with a declared state graph."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from weituan.core.money import MINOR_UNITS
from weituan.core.states import StateGraph


class DealState(models.TextChoices):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    TIPPED = "tipped"
    SOLD_OUT = "sold_out"
    CLOSED = "closed"
    FAILED = "failed"


# A deal is sold out only once it has tipped (`deal_tip_check`), and sells again, tipped, when units come
# back to it before its window ends (an order cancelled, failed or expired: `stock_return`).
DEAL_GRAPH = StateGraph.declare(
    "deal",
    DealState.DRAFT,
    {
        DealState.DRAFT: [DealState.SCHEDULED, DealState.LIVE],
        DealState.SCHEDULED: [DealState.LIVE],
        DealState.LIVE: [DealState.TIPPED, DealState.FAILED],
        DealState.TIPPED: [DealState.SOLD_OUT, DealState.CLOSED],
        DealState.SOLD_OUT: [DealState.TIPPED, DealState.CLOSED],
    },
)

# States in which a deal takes orders.
SELLING_STATES = (DealState.LIVE, DealState.TIPPED)
# States after which no hold may stay open.
ENDED_STATES = (DealState.CLOSED, DealState.FAILED)
# States of a deal that has tipped: it owes every counted hold its capture.
TIPPED_STATES = (DealState.TIPPED, DealState.SOLD_OUT, DealState.CLOSED)


class RefundPolicy(models.TextChoices):
    WINDOW = "window", "refund within N days of purchase"
    ANYTIME = "anytime", "refund any time before redemption"
    ON_EXPIRY = "on_expiry", "automatic refund of unredeemed vouchers on expiry"


CURRENCY_CHOICES = [(code, code) for code in sorted(MINOR_UNITS)]


class Deal(models.Model):
    """A group-buying offer. Prices are integer minor units of `currency`.

    `sold` counts units taken (reserved or paid); it only moves by conditional UPDATE so it never
    passes `released` (the units on sale so far: `max_quantity`, or the flash batches released).
    `takers` counts the buyers behind `sold` (those whose quota holds a unit); it moves in the same
    UPDATE as `sold`, when a buyer's first unit is taken or their last one given back. The tipping point
    counts buyers too, but only those whose payment is held or made (`deal_buyers_counted`): they are
    among the takers, so a deal with fewer takers than its tipping point cannot tip yet.
    """

    merchant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deals")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    images = models.JSONField(default=list, blank=True)  # URLs
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="CNY")
    list_price = models.PositiveBigIntegerField()
    deal_price = models.PositiveBigIntegerField()
    # Team mode (拼团) is on when team_size is set.
    team_price = models.PositiveBigIntegerField(null=True, blank=True)
    team_size = models.PositiveSmallIntegerField(null=True, blank=True)
    team_window_hours = models.PositiveSmallIntegerField(default=24)
    tipping_point = models.PositiveIntegerField(default=1)
    max_quantity = models.PositiveIntegerField()
    per_user_limit = models.PositiveIntegerField(default=1)
    gift_limit = models.PositiveIntegerField(default=0)  # extra units a buyer may take as gifts
    flash_sale = models.BooleanField(default=False)
    released = models.PositiveIntegerField(default=0)
    sold = models.PositiveIntegerField(default=0)
    takers = models.PositiveIntegerField(default=0)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    voucher_valid_days = models.PositiveIntegerField(default=90)
    refund_policy = models.CharField(max_length=10, choices=RefundPolicy.choices, default=RefundPolicy.WINDOW)
    refund_window_days = models.PositiveIntegerField(default=7)
    platform_fee_bps = models.PositiveIntegerField(default=500)  # basis points of each capture
    state = models.CharField(max_length=10, choices=DEAL_GRAPH.choices(), default=DealState.DRAFT)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    tipped_at = models.DateTimeField(null=True, blank=True)
    post_id = models.BigIntegerField(null=True, blank=True)  # the micro-blog post carrying the deal card
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["state", "ends_at"]), models.Index(fields=["merchant", "-id"])]
        constraints = [
            models.CheckConstraint(condition=Q(sold__lte=F("released")), name="deal_sold_within_released"),
            models.CheckConstraint(condition=Q(takers__lte=F("sold")), name="deal_takers_within_sold"),
            models.CheckConstraint(
                condition=Q(released__lte=F("max_quantity")), name="deal_released_within_max"
            ),
            models.CheckConstraint(condition=Q(deal_price__lte=F("list_price")), name="deal_price_le_list"),
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="deal_window_ordered"),
        ]

    def __str__(self) -> str:
        return f"deal {self.id} {self.title}"

    @property
    def team_mode(self) -> bool:
        return bool(self.team_size)

    @property
    def units_left(self) -> int:
        """Units a buyer could still take: those on sale (a flash sale's released batches) not sold yet;
        none once the deal has ended, whatever its window left unsold."""
        if self.state in ENDED_STATES:
            return 0
        return max(self.released - self.sold, 0)


class FlashBatch(models.Model):
    """Part of a flash-sale deal's stock put on sale at `release_at` (秒杀)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="batches")
    release_at = models.DateTimeField()
    quantity = models.PositiveIntegerField()
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["release_at", "id"]


class TeamState(models.TextChoices):
    OPEN = "open"
    FILLED = "filled"
    EXPIRED = "expired"
    MERGED = "merged"


TEAM_GRAPH = StateGraph.declare(
    "team",
    TeamState.OPEN,
    {TeamState.OPEN: [TeamState.FILLED, TeamState.EXPIRED, TeamState.MERGED]},
)


class Team(models.Model):
    """A team purchase: `size` buyers at the team price within the window, else everyone is refunded."""

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="teams")
    leader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    size = models.PositiveSmallIntegerField()
    members = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=TEAM_GRAPH.choices(), default=TeamState.OPEN)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    expires_at = models.DateTimeField()
    rescue_offered_at = models.DateTimeField(null=True, blank=True)  # when the members were offered a way out
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["deal", "state", "expires_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(members__lte=F("size")), name="team_members_within_size")
        ]

    def __str__(self) -> str:
        return f"team {self.id} of deal {self.deal_id}"
