"""A ledger account, once created, keeps what identifies it and is never removed: triggers refuse every
DELETE of an account and every UPDATE that changes its id, kind, owner, name, currency or identity,
whoever sends it (the ORM, raw SQL, a shell), as 0007 does for postings and entries. An entry names its
account by id and balances are sums over an account's entries, so an account changed in place would
move every entry it ever had to another owner or currency, and one removed would leave them pointing
nowhere.

Nothing in the product changes an account: `ledger.account_get` creates one on first use, and the
ledger's writers only lock accounts (SELECT ... FOR UPDATE, which fires no trigger). Every column of an
account identifies it, so no column may change; an UPDATE that leaves them all as they were passes (a
`save()` of an unchanged account, or one setting a column added later for some other purpose).

Erasing the whole database stays possible, as with 0007: on PostgreSQL `flush` truncates, which fires no
row trigger; on SQLite a DELETE passes while `deals_ledger_erasure` (made by 0007) holds a row, which only
the deals app's `flush` command puts there, inside its own transaction.

On SQLite, a later migration that rebuilds `deals_account` (Django does so to alter a column there) drops
these triggers with it: it must run CREATE_TRIGGERS["sqlite"] again (the tests check they exist).
"""

from django.db import migrations

ERASURE_TABLE = "deals_ledger_erasure"
TABLE = "deals_account"
IDENTIFYING = ("id", "kind", "owner_id", "name", "currency", "identity")
MESSAGE = "the ledger is append-only: an account keeps its identity and is never removed"

_PG_FUNCTION = f"""
CREATE FUNCTION deals_account_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of %: {MESSAGE}', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$
"""


def _changed(distinct: str) -> str:
    return " OR ".join(f"OLD.{column} {distinct} NEW.{column}" for column in IDENTIFYING)


CREATE_TRIGGERS = {
    "postgresql": [
        _PG_FUNCTION,
        f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}"
        " FOR EACH ROW EXECUTE FUNCTION deals_account_fixed()",
        f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}"
        f" FOR EACH ROW WHEN ({_changed('IS DISTINCT FROM')}) EXECUTE FUNCTION deals_account_fixed()",
    ],
    "sqlite": [
        # RAISE(ABORT) fails the statement as a constraint would: sqlite3 (and Django) raise IntegrityError.
        f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}"
        f" WHEN NOT EXISTS (SELECT 1 FROM {ERASURE_TABLE})"
        f" BEGIN SELECT RAISE(ABORT, 'DELETE of {TABLE}: {MESSAGE}'); END",
        f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} WHEN {_changed('IS NOT')}"
        f" BEGIN SELECT RAISE(ABORT, 'UPDATE of {TABLE}: {MESSAGE}'); END",
    ],
}
DROP_TRIGGERS = {
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {TABLE}_no_delete ON {TABLE}",
        f"DROP TRIGGER IF EXISTS {TABLE}_no_update ON {TABLE}",
        "DROP FUNCTION IF EXISTS deals_account_fixed()",
    ],
    "sqlite": [
        f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
        f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    ],
}


def create_triggers(apps, schema_editor):
    for statement in CREATE_TRIGGERS.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def drop_triggers(apps, schema_editor):
    for statement in DROP_TRIGGERS.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("deals", "0008_deal_takers"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers),
    ]
