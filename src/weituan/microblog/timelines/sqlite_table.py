"""SQLite: the home timeline entries table kept WITHOUT ROWID.

A rowid table keeps its rows in insertion order and the (user, post) key as a separate index, so a page
of 30 entries was 30 lookups from the index into rows scattered by the fan-outs that wrote them; without
a rowid the rows live in the key's own tree, a reader's newest entries side by side, and a delivery
writes one tree instead of two. Django knows no such clause: a migration that alters the model makes it
rebuild the table as a rowid table, so `entries_table_after_migrate` runs after every migrate and makes it
again without one (microblog_timelines 0003 did it first). PostgreSQL keeps its table as it is.
"""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from weituan.core.sqlite_tables import sqlite_table_definition, sqlite_table_remade

TABLE = "microblog_timelines_timelineentry"
SUFFIX = " WITHOUT ROWID"


def entries_table_rebuild(connection: BaseDatabaseWrapper, *, rowid: bool) -> None:
    """Make the entries table again, with its rows, without a rowid (or, `rowid`, with one)."""
    if connection.vendor != "sqlite":
        return

    def declared(definition: str) -> str:
        plain = definition.rstrip()
        if _without_rowid(plain):
            plain = plain[: -len(SUFFIX.strip())].rstrip()
        return plain if rowid else plain + SUFFIX

    # In key order: rows inserted into the key's tree in order fill its pages one after another.
    sqlite_table_remade(connection, TABLE, declared, order_by='"user_id", "post_id"')


def entries_table_has_rowid(connection: BaseDatabaseWrapper) -> bool | None:
    """Whether the SQLite entries table has a rowid; None when it does not exist (or not on SQLite)."""
    if connection.vendor != "sqlite":
        return None
    found = sqlite_table_definition(connection, TABLE)
    return None if found is None else not _without_rowid(found)


def _without_rowid(definition: str) -> bool:
    return definition.rstrip().upper().endswith(SUFFIX.strip())


MIGRATION = ("microblog_timelines", "0003_timelineentry_without_rowid")


def entries_table_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: a table Django rebuilt with a rowid is made again without one (once the
    migration that first did so is applied: migrated back before it, the table keeps its rowid)."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if (
        entries_table_has_rowid(connection)
        and MIGRATION in MigrationRecorder(connection).applied_migrations()
    ):
        entries_table_rebuild(connection, rowid=False)
