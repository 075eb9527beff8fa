# An order that ended without being paid (voiding, voided or expired) keeps why: its buyer cancelled,
# its payment was declined or released by the provider, its deal failed, its team did not fill, its
# reservation ran out of time, or it switched to the solo price. Orders that ended before this column
# get the reason their rows and their deal's and team's still show, as far as they show it.

from datetime import timedelta

from django.db import migrations, models
from django.db.models import Exists, F, OuterRef, Q

# A switch to the solo price voids the team order and creates the solo one in the same transaction.
_SWITCH_WINDOW = timedelta(seconds=5)


def fill_end_reasons(apps, schema_editor):
    Order = apps.get_model("deals", "Order")

    def unset(*states):
        return Order.objects.filter(state__in=states, end_reason="")

    after_deal_ended = Q(deal__state="failed", state_changed_at__gte=F("deal__state_changed_at"))
    # An expired reservation: released when its deal failed, else its time ran out (a cancelled
    # reservation ends the same way, and cannot be told from it).
    unset("expired").filter(after_deal_ended).update(end_reason="deal_failed")
    unset("expired").update(end_reason="reservation_expired")
    held = ("voiding", "voided")
    switched = Order.objects.filter(
        deal_id=OuterRef("deal_id"),
        buyer_id=OuterRef("buyer_id"),
        team__isnull=True,
        id__gt=OuterRef("id"),
        created_at__gte=OuterRef("state_changed_at"),
        created_at__lte=OuterRef("state_changed_at") + _SWITCH_WINDOW,
    )
    unset(*held).filter(Exists(switched), team__isnull=False, state="voided").update(end_reason="switched_solo")
    unset(*held).filter(team__state="expired").update(end_reason="team_expired")
    unset(*held).filter(after_deal_ended).update(end_reason="deal_failed")
    # A hold its tipped deal counted, released after the tip: only a capture the provider refused (or a
    # hold it released itself) ends one so.
    counted = Q(team__isnull=True) | Q(team__state="filled")
    unset(*held).filter(counted, deal__tipped_at__isnull=False, state_changed_at__gte=F("deal__tipped_at")).update(
        end_reason="payment_declined"
    )
    unset(*held).update(end_reason="cancelled")


class Migration(migrations.Migration):
    dependencies = [
        ("deals", "0012_refund_client_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="end_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("cancelled", "Cancelled"),
                    ("payment_declined", "Payment declined"),
                    ("payment_released", "Payment released by the provider"),
                    ("deal_failed", "Deal did not tip"),
                    ("team_expired", "Team did not fill"),
                    ("reservation_expired", "Payment not completed in time"),
                    ("switched_solo", "Switched to the solo price"),
                ],
                default="",
                max_length=20,
            ),
        ),
        migrations.RunPython(fill_end_reasons, migrations.RunPython.noop, elidable=True),
    ]
