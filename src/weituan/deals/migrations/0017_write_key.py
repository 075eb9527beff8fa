# The Idempotency-Key kept with the change is kept by a team merge, a voucher's redemption and a deal's
# publication too: the row of a cancel or a switch to the solo price becomes one of every kept key,
# answered with an order, a team, a voucher or a deal, so that one key still names one request of its
# sender across all of them.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deals', '0016_order_write_key'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameModel(old_name='OrderWriteKey', new_name='WriteKey'),
        migrations.RemoveConstraint(model_name='writekey', name='order_write_key_sender'),
        migrations.AddConstraint(
            model_name='writekey',
            constraint=models.UniqueConstraint(fields=('sender', 'key'), name='write_key_sender'),
        ),
        migrations.AlterField(
            model_name='writekey',
            name='request',
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name='writekey',
            name='order',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='deals.order'),
        ),
        migrations.AddField(
            model_name='writekey',
            name='team',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='deals.team'),
        ),
        migrations.AddField(
            model_name='writekey',
            name='voucher',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='deals.voucher'),
        ),
        migrations.AddField(
            model_name='writekey',
            name='deal',
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='deals.deal'),
        ),
        migrations.AddConstraint(
            model_name='writekey',
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(('deal__isnull', True), ('order__isnull', False), ('team__isnull', True), ('voucher__isnull', True)),
                    models.Q(('deal__isnull', True), ('order__isnull', True), ('team__isnull', False), ('voucher__isnull', True)),
                    models.Q(('deal__isnull', True), ('order__isnull', True), ('team__isnull', True), ('voucher__isnull', False)),
                    models.Q(('deal__isnull', False), ('order__isnull', True), ('team__isnull', True), ('voucher__isnull', True)),
                    _connector='OR',
                ),
                name='write_key_answer',
            ),
        ),
    ]
