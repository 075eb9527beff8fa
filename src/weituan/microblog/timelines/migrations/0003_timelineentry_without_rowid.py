"""SQLite: home timeline entries kept in their primary key's order (a WITHOUT ROWID table).

A rowid table keeps the rows in insertion order and the (user, post) key as a separate index, so a
page of 30 entries was 30 lookups from the index into rows scattered by the fan-outs that wrote them;
without a rowid the rows live in the key's own tree, a reader's newest entries side by side, and a
delivery writes one tree instead of two. PostgreSQL is left as it is (with Redis it holds no entries).

Django rebuilds a SQLite table without this clause when a later migration alters the model, so
`test_store_members` checks that the table is still WITHOUT ROWID.
"""

from typing import Any

from django.db import migrations

TABLE = "microblog_timelines_timelineentry"
COLUMNS = '"user_id", "post_id", "author_id", "origin_author_id"'


def _rebuild(schema_editor: Any, suffix: str) -> None:
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute(f'DROP TABLE IF EXISTS "{TABLE}__rebuilt"')
    schema_editor.execute(
        f'CREATE TABLE "{TABLE}__rebuilt" ("user_id" bigint NOT NULL, "post_id" bigint NOT NULL,'
        ' "author_id" bigint NOT NULL, "origin_author_id" bigint NOT NULL,'
        f' PRIMARY KEY ("user_id", "post_id")){suffix}'
    )
    schema_editor.execute(
        f'INSERT INTO "{TABLE}__rebuilt" ({COLUMNS}) SELECT {COLUMNS} FROM "{TABLE}" ORDER BY "user_id", "post_id"'  # noqa: S608
    )
    schema_editor.execute(f'DROP TABLE "{TABLE}"')
    schema_editor.execute(f'ALTER TABLE "{TABLE}__rebuilt" RENAME TO "{TABLE}"')


def without_rowid(apps: Any, schema_editor: Any) -> None:
    _rebuild(schema_editor, " WITHOUT ROWID")


def with_rowid(apps: Any, schema_editor: Any) -> None:
    _rebuild(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [("microblog_timelines", "0002_fanout_job_progress_at")]

    operations = [migrations.RunPython(without_rowid, with_rowid, elidable=False)]
