"""Row versions on SQLite, for telling whether a kept rendering of a status is still current.

On PostgreSQL every new version of a row has a new `(xmin, ctid)`, so the home read checks its kept
statuses against those without reading the rows (`queries.versions.post_versions`). SQLite keeps nothing
like it, so there the tables a status is rendered from carry a `row_version` column, and triggers give
it a fresh random 64-bit value whenever a row is inserted or updated, whatever the statement (a model's
save, a queryset update, raw SQL). A changed row therefore shows as a changed version, as on PostgreSQL.

A post's images are part of what its status shows, so on SQLite a change to an image row (attached,
described, removed, moved to another post) renews the version of the post it belongs to, by triggers on
the image table: the post's own version then covers its images, and a home read reads no image rows. SQLite refuses to
rebuild a table that a trigger on another table names, as a migration altering the posts does, so these
triggers are dropped before every migrate and made again after it.

The column is not a model field: Django never writes it, and a row it inserts gets its version from the
insert trigger. A migration that alters one of these tables makes SQLite rebuild it from the model,
without the column or its triggers; `row_versions_ensure` puts both back, and runs after every migrate.
"""

from typing import Any

from django.apps import apps as global_apps
from django.db.backends.base.base import BaseDatabaseWrapper

COLUMN = "row_version"

# What a rendered status shows: the post, its author, the author's counters (the post's images renew
# the post's version: `_image_triggers`).
VERSIONED_MODELS = (
    ("microblog", "Post"),
    ("accounts", "User"),
    ("microblog", "AccountStats"),
)
IMAGE_MODEL = ("microblog", "MediaAttachment")


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


def _image_triggers(images: str, posts: str) -> list[str]:
    """Triggers on the image table renewing the version of the post an image row belongs to, and on a
    move, of the post it left."""
    renew = f'UPDATE "{posts}" SET {COLUMN} = random() WHERE id'  # noqa: S608
    name = f"{images}_post_{COLUMN}"
    return [
        f'CREATE TRIGGER IF NOT EXISTS "{name}_insert" AFTER INSERT ON "{images}"'
        f" WHEN NEW.post_id IS NOT NULL BEGIN {renew} = NEW.post_id; END",
        f'CREATE TRIGGER IF NOT EXISTS "{name}_update" AFTER UPDATE ON "{images}"'
        f" WHEN NEW.post_id IS NOT NULL OR OLD.post_id IS NOT NULL BEGIN {renew} IN (NEW.post_id, OLD.post_id); END",
        f'CREATE TRIGGER IF NOT EXISTS "{name}_delete" AFTER DELETE ON "{images}"'
        f" WHEN OLD.post_id IS NOT NULL BEGIN {renew} = OLD.post_id; END",
    ]


def _image_tables(cursor: Any, apps: Any) -> tuple[str, str] | None:
    """The image and post tables' names, if both exist yet."""
    images, posts = (apps.get_model(*model)._meta.db_table for model in (IMAGE_MODEL, VERSIONED_MODELS[0]))
    cursor.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (%s, %s)", [images, posts]
    )
    return (images, posts) if len(cursor.fetchall()) == 2 else None


def row_versions_ensure(
    connection: BaseDatabaseWrapper, apps: Any = global_apps, *, images: bool = True
) -> None:
    """Give every versioned table its `row_version` column and triggers where they are missing, and with
    `images` the image table its triggers (SQLite only; idempotent). Rows that were there before the
    column get a fresh version each."""
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
        tables = _image_tables(cursor, apps) if images else None
        if tables is not None:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE %s",
                [f"{tables[0]}_post_{COLUMN}_%"],
            )
            (present,) = cursor.fetchone()
            if present < 3:
                # Made again after a migrate: the posts with images get fresh versions first, as their
                # images may have changed while the triggers were away.
                cursor.execute(
                    f'UPDATE "{tables[1]}" SET {COLUMN} = random()'  # noqa: S608
                    f' WHERE id IN (SELECT post_id FROM "{tables[0]}" WHERE post_id IS NOT NULL)'
                )
                for statement in _image_triggers(*tables):
                    cursor.execute(statement)


def image_triggers_drop(connection: BaseDatabaseWrapper, apps: Any = global_apps) -> None:
    """Drop the image table's triggers (SQLite; before a migrate, see the module's docstring)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        tables = _image_tables(cursor, apps)
        if tables is None:
            return
        for kind in ("insert", "update", "delete"):
            cursor.execute(f'DROP TRIGGER IF EXISTS "{tables[0]}_post_{COLUMN}_{kind}"')


def row_versions_before_migrate(using: str = "default", plan: Any = None, **kwargs: Any) -> None:
    """pre_migrate receiver: the image triggers go before migrations run (see the module's docstring);
    a migrate with nothing to apply keeps them."""
    from django.db import connections

    if plan:
        image_triggers_drop(connections[using])


def row_versions_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: after any migrate (which may have rebuilt a table), versions are back."""
    from django.db import connections

    row_versions_ensure(connections[using])
