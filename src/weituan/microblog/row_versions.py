"""Row versions on SQLite, for telling whether a kept rendering of a status is still current.

On PostgreSQL every new version of a row has a new `(xmin, ctid)`, so the home read checks its kept
statuses against those without reading the rows (`queries.versions.post_versions`). SQLite keeps nothing
like it, so there the tables a status is rendered from carry a `row_version` column, and triggers give
it a fresh random 64-bit value whenever a row is inserted or updated, whatever the statement (a model's
save, a queryset update, raw SQL). A changed row therefore shows as a changed version, as on PostgreSQL.

The column is not a model field: Django never writes it, and a row it inserts gets its version from the
insert trigger. A migration that alters one of these tables makes SQLite rebuild it from the model,
without the column or its triggers; `row_versions_ensure` puts both back, and runs after every migrate.
"""

from typing import Any

from django.apps import apps as global_apps
from django.db.backends.base.base import BaseDatabaseWrapper

COLUMN = "row_version"

# What a rendered status shows: the post, its author, the author's counters, the post's images.
VERSIONED_MODELS = (
    ("microblog", "Post"),
    ("accounts", "User"),
    ("microblog", "AccountStats"),
    ("microblog", "MediaAttachment"),
)


def versioned_tables(apps: Any = global_apps) -> list[str]:
    return [apps.get_model(label, name)._meta.db_table for label, name in VERSIONED_MODELS]


def _triggers(table: str) -> list[str]:
    quoted = f'"{table}"'
    fresh = f"BEGIN UPDATE {quoted} SET {COLUMN} = random() WHERE rowid = NEW.rowid; END"  # noqa: S608
    # The update trigger skips the trigger's own update (its version already differs from the old).
    return [
        f'CREATE TRIGGER IF NOT EXISTS "{table}_{COLUMN}_insert" AFTER INSERT ON {quoted} {fresh}',
        f'CREATE TRIGGER IF NOT EXISTS "{table}_{COLUMN}_update" AFTER UPDATE ON {quoted}'
        f" WHEN NEW.{COLUMN} IS OLD.{COLUMN} {fresh}",
    ]


def row_versions_ensure(connection: BaseDatabaseWrapper, apps: Any = global_apps) -> None:
    """Give every versioned table its `row_version` column and triggers where they are missing (SQLite
    only; idempotent). Rows that were there before the column get a fresh version each."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for table in versioned_tables(apps):
            cursor.execute(f'PRAGMA table_info("{table}")')
            columns = {row[1] for row in cursor.fetchall()}
            if not columns:
                continue  # not created yet (a partial migrate)
            if COLUMN not in columns:
                cursor.execute(f'ALTER TABLE "{table}" ADD COLUMN {COLUMN} integer NOT NULL DEFAULT 0')
                # Fresh versions for the rows already there (a rebuilt table's rows may have changed
                # since a running process kept a rendering of them), before the triggers exist.
                cursor.execute(f'UPDATE "{table}" SET {COLUMN} = random()')  # noqa: S608
            for statement in _triggers(table):
                cursor.execute(statement)


def row_versions_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: after any migrate (which may have rebuilt a table), versions are back."""
    from django.db import connections

    row_versions_ensure(connections[using])
