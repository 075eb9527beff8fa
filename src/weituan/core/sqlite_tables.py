"""SQLite: a table made again from a changed definition, for what Django's own rebuild cannot declare
(a rowid key, WITHOUT ROWID)."""

from collections.abc import Callable

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper


def sqlite_table_definition(connection: BaseDatabaseWrapper, table: str) -> str | None:
    """The CREATE TABLE statement of `table` as SQLite keeps it; None when there is no such table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        found = cursor.fetchone()
    return None if found is None else str(found[0])


def sqlite_table_remade(
    connection: BaseDatabaseWrapper, table: str, definition: Callable[[str], str], *, order_by: str = ""
) -> bool:
    """Make `table` again from `definition(its CREATE TABLE statement)`, with its rows (copied in
    `order_by` order when given), indexes and triggers, in one transaction; False, and nothing done,
    when the statement comes back unchanged. Foreign keys pointing at the table keep pointing at its
    name; checks of them must be off (as in a migration's schema editor) when other tables have any."""
    current = sqlite_table_definition(connection, table)
    if current is None:
        raise LookupError(f"SQLite has no table {table}")
    wanted = definition(current)
    if wanted == current:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL",
            [table],
        )
        dependents = [row[0] for row in cursor.fetchall()]
        cursor.execute(f'PRAGMA table_info("{table}")')
        columns = ", ".join(f'"{row[1]}"' for row in cursor.fetchall())
    rebuilt = f"{table}__rebuilt"
    order = f" ORDER BY {order_by}" if order_by else ""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{rebuilt}"')
        cursor.execute(wanted.replace(f'CREATE TABLE "{table}"', f'CREATE TABLE "{rebuilt}"', 1))
        cursor.execute(f'INSERT INTO "{rebuilt}" ({columns}) SELECT {columns} FROM "{table}"{order}')  # noqa: S608
        cursor.execute(f'DROP TABLE "{table}"')
        cursor.execute(f'ALTER TABLE "{rebuilt}" RENAME TO "{table}"')
        for statement in dependents:
            cursor.execute(statement)
    return True
