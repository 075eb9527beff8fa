"""PostgreSQL: `weituan_refuse(reason)`, which a checkout's batched statements call to refuse an order.

A checkout on PostgreSQL sends its statements, COMMIT included, as one query; a refusal (not enough
money, over the buyer's limit, no stock) must stop it before the COMMIT. The function raises an error
of its own SQLSTATE carrying the reason, which aborts the rest of the query and the transaction.
"""

from typing import Any

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION weituan_refuse(reason text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'WR001', MESSAGE = reason;
END
$$
"""
DROP = "DROP FUNCTION IF EXISTS weituan_refuse(text)"


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("deals", "0002_order_share")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
