"""`flush`, Django's, able to erase the ledger too: its append-only triggers refuse row-by-row DELETEs.

On PostgreSQL `flush` empties the tables with TRUNCATE, which the triggers do not see. SQLite has no
TRUNCATE, so there the ledger's DELETE triggers let a DELETE through while the erasure table holds a
row: this command puts one there in the flush's own transaction and takes it out before the commit,
so no other connection ever sees the ledger open (deals migrations 0007, for postings and entries, and
0009, for accounts).
"""

from typing import Any

from django.core.management.commands import flush
from django.db import connections, transaction

from weituan.deals.models.ledger import LEDGER_ERASURE_TABLE


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        connection = connections[database]
        if (
            connection.vendor != "sqlite"
            or LEDGER_ERASURE_TABLE not in connection.introspection.table_names()
        ):
            super().handle(**options)
            return
        table = connection.ops.quote_name(LEDGER_ERASURE_TABLE)
        with transaction.atomic(using=database):
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {table} (erasing) VALUES (1)")  # noqa: S608
            super().handle(**options)
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
