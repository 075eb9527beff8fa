"""A buyer wallet's entries carry the wallet's running balance (filled in here for the entries already
written), and the ledger's rows reference one another without database constraints (`weituan ledger
check` proves the references instead).

Apply it with every server and worker of the older code stopped (as `weituan serve` does, migrating
before it serves): a wallet entry that code writes afterwards carries no balance, and `ledger check`
would report it."""

import django.db.models.deletion
from django.db import migrations, models

# The same on PostgreSQL and SQLite (3.33+): each wallet entry's balance is the SUM of the wallet's
# entries up to it, by posting.
RUNNING_BALANCES = """
UPDATE deals_entry SET balance = r.running
FROM (
    SELECT e.id AS id,
           SUM(e.amount) OVER (PARTITION BY e.account_id ORDER BY e.posting_id, e.id) AS running
    FROM deals_entry e JOIN deals_account a ON a.id = e.account_id
    WHERE a.kind = 'wallet'
) AS r
WHERE deals_entry.id = r.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("deals", "0004_checkout_write_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="entry",
            name="balance",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="entry",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="deals.account",
            ),
        ),
        migrations.AlterField(
            model_name="entry",
            name="posting",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="deals.posting",
            ),
        ),
        migrations.AlterField(
            model_name="posting",
            name="order",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="postings",
                to="deals.order",
            ),
        ),
        migrations.RunSQL(RUNNING_BALANCES, reverse_sql=migrations.RunSQL.noop),
    ]
