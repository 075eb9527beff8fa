# Deals saved before their voucher validity and refund window were bounded (the web editor took any
# number) may hold a voucher validity past ten years or a refund window past a year: settling such a
# deal overflowed the voucher's expiry and crashed, leaving its buyers' payments held. They are brought
# down to the bounds the service now keeps (deals.services.deals.VOUCHER_VALID_DAYS_MAX and
# REFUND_WINDOW_DAYS_MAX, written out here: a migration must not change when the code does).

from django.db import migrations

VOUCHER_VALID_DAYS_MAX = 3650
REFUND_WINDOW_DAYS_MAX = 365


def clamp_days(apps, schema_editor):
    Deal = apps.get_model("deals", "Deal")
    Deal.objects.filter(voucher_valid_days__gt=VOUCHER_VALID_DAYS_MAX).update(
        voucher_valid_days=VOUCHER_VALID_DAYS_MAX
    )
    Deal.objects.filter(refund_window_days__gt=REFUND_WINDOW_DAYS_MAX).update(
        refund_window_days=REFUND_WINDOW_DAYS_MAX
    )


class Migration(migrations.Migration):
    dependencies = [("deals", "0013_order_end_reason")]

    operations = [migrations.RunPython(clamp_days, migrations.RunPython.noop)]
