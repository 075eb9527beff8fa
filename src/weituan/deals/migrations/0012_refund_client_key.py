# A refund the buyer asks for through the API keeps the request's Idempotency-Key and who sent it, so a
# retry of the request finds the refund it wrote after the first answer said the provider had not
# confirmed it yet.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("deals", "0011_order_voiding"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="requested_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="refund",
            name="client_key",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
        migrations.AddIndex(
            model_name="refund",
            index=models.Index(fields=["requested_by", "client_key"], name="refund_requested_by_key"),
        ),
    ]
