"""The Idempotency-Keys that writes keep with their own change (`services.write_keys`)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from weituan.deals.models.deals import Deal, Team
from weituan.deals.models.orders import Order, Voucher

# What a kept key is answered with: exactly one of these is set.
ANSWERS = ("order", "team", "voucher", "deal")


def _only(field: str) -> Q:
    """The answer is `field` and none of the others."""
    return Q(**{f"{name}__isnull": name != field for name in ANSWERS})


class WriteKey(models.Model):
    """The Idempotency-Key of a request that changed something, kept by that change: written in the
    transaction that made it, so it exists exactly when the change does. A retry of the request finds it
    and is answered with what it points at (the cancelled order, the new solo order, the team merged
    into, the redeemed voucher, the published deal) however long after, even if its first answer was
    lost or no idempotency record of it is left. One key names one request of its sender, whatever
    kind of write it was (`write_key_sender`)."""

    # Indexed by `write_key_sender`, which leads with it.
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    # What the request asked, as `services.write_keys` names it: "cancel:<order id>", "solo:<order id>",
    # "merge:<team id>:<into id>", "redeem:<voucher code>" or "publish:<deal id>".
    request = models.CharField(max_length=64)
    # What its retry is answered with (`write_key_answer`). Never looked up from their side: none of
    # these rows is ever deleted, so no index is kept for it.
    order = models.ForeignKey(Order, null=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    team = models.ForeignKey(Team, null=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    voucher = models.ForeignKey(
        Voucher, null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    deal = models.ForeignKey(Deal, null=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender", "key"], name="write_key_sender"),
            models.CheckConstraint(
                condition=_only("order") | _only("team") | _only("voucher") | _only("deal"),
                name="write_key_answer",
            ),
        ]

    def __str__(self) -> str:
        return f"key of {self.request}"
