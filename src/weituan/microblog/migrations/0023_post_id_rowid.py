"""SQLite: a post's id is its row's rowid (`core.fields.SnowflakeKey`).

The posts table was created with Django's `bigint` key, which SQLite keeps as a unique index beside the
rowid, so every lookup of a post by id descended two trees. Here the table is rebuilt with the key
declared `integer PRIMARY KEY`, SQLite's rowid, with the same rows, indexes and triggers; the tables
whose foreign keys point at posts are left as they are (their columns stay `bigint`). PostgreSQL's
table is unchanged.
"""

from typing import Any

from django.db import migrations

import weituan.core.fields
import weituan.core.ids
from weituan.core.sqlite_tables import sqlite_table_remade

TABLE = "microblog_post"
BIGINT_KEY = '"id" bigint NOT NULL PRIMARY KEY'
ROWID_KEY = '"id" integer NOT NULL PRIMARY KEY'


def _rebuild(schema_editor: Any, old_key: str, new_key: str) -> None:
    """The posts table made again with `new_key` for `old_key` in its definition (nothing to do when it
    has `new_key` already). The schema editor has foreign key checks off, as for Django's own rebuilds."""
    if schema_editor.connection.vendor != "sqlite":
        return

    def rekeyed(definition: str) -> str:
        if new_key in definition:
            return definition  # already so
        if old_key not in definition:
            raise RuntimeError(f"{TABLE}: its definition declares neither {old_key} nor {new_key}")
        return definition.replace(old_key, new_key, 1)

    sqlite_table_remade(schema_editor.connection, TABLE, rekeyed)


def rowid_key(apps: Any, schema_editor: Any) -> None:
    _rebuild(schema_editor, BIGINT_KEY, ROWID_KEY)


def bigint_key(apps: Any, schema_editor: Any) -> None:
    _rebuild(schema_editor, ROWID_KEY, BIGINT_KEY)


class Migration(migrations.Migration):
    dependencies = [("microblog", "0022_post_author_parent")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(rowid_key, bigint_key, elidable=False)],
            state_operations=[
                migrations.AlterField(
                    model_name="post",
                    name="id",
                    field=weituan.core.fields.SnowflakeKey(
                        default=weituan.core.ids.next_id, editable=False, primary_key=True, serialize=False
                    ),
                )
            ],
        )
    ]
