"""The ledger is append-only in the database too: triggers refuse every UPDATE and DELETE of a posting or
an entry, whoever sends it (the ORM, raw SQL, a shell). A mistake is corrected by a new posting.

Nothing in the product changes these rows once written: the running balance (`Entry.balance`) is written
with its entry, and the one UPDATE there ever was, 0005's filling-in of older entries' balances, runs
before this migration.

Erasing the whole database stays possible, as Django's `flush` (and the tests' clean-up between
transactional tests) does it:
- PostgreSQL: `flush` empties the tables with TRUNCATE, which fires no row trigger; the triggers refuse
  every row-by-row UPDATE and DELETE.
- SQLite has no TRUNCATE: `flush` runs `DELETE FROM` on every table, which is row by row, and a trigger
  cannot tell it from any other DELETE. So a DELETE passes while `deals_ledger_erasure` holds a row, and
  only the deals app's `flush` command puts one there, in the transaction of the flush, removed before
  it commits. An UPDATE is refused always.

On SQLite, a later migration that rebuilds one of these tables (Django does so to alter a column there)
drops its triggers with it: it must run CREATE_TRIGGERS["sqlite"] again (the tests check they exist).
"""

from django.db import migrations

ERASURE_TABLE = "deals_ledger_erasure"
TABLES = ("deals_posting", "deals_entry")
MESSAGE = "the ledger is append-only: post a correcting entry instead"

_PG_FUNCTION = f"""
CREATE FUNCTION deals_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of %: {MESSAGE}', TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$
"""


def _sqlite_trigger(table: str, operation: str) -> str:
    # RAISE(ABORT) fails the statement as a constraint would: sqlite3 (and Django) raise IntegrityError.
    gate = f" WHEN NOT EXISTS (SELECT 1 FROM {ERASURE_TABLE})" if operation == "DELETE" else ""
    return (
        f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}{gate}"
        f" BEGIN SELECT RAISE(ABORT, '{operation} of {table}: {MESSAGE}'); END"
    )


CREATE_TRIGGERS = {
    "postgresql": [
        _PG_FUNCTION,
        *(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION deals_ledger_append_only()"
            for table in TABLES
        ),
    ],
    "sqlite": [
        f"CREATE TABLE IF NOT EXISTS {ERASURE_TABLE} (erasing integer NOT NULL)",
        *(_sqlite_trigger(table, operation) for table in TABLES for operation in ("UPDATE", "DELETE")),
    ],
}
DROP_TRIGGERS = {
    "postgresql": [
        *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in TABLES),
        "DROP FUNCTION IF EXISTS deals_ledger_append_only()",
    ],
    "sqlite": [
        *(
            f"DROP TRIGGER IF EXISTS {table}_no_{operation.lower()}"
            for table in TABLES
            for operation in ("UPDATE", "DELETE")
        ),
        f"DROP TABLE IF EXISTS {ERASURE_TABLE}",
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
        ("deals", "0006_team_rescue_offer"),
    ]

    operations = [
        migrations.RunPython(create_triggers, drop_triggers),
    ]
