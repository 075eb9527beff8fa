"""SQLite: home timeline entries kept in their primary key's order, a WITHOUT ROWID table (see
`microblog.timelines.sqlite_table`, which also makes it so again after any migrate that rebuilt it).
PostgreSQL is left as it is (with Redis it holds no entries)."""

from typing import Any

from django.db import migrations

from weituan.microblog.timelines.sqlite_table import entries_table_rebuild


def without_rowid(apps: Any, schema_editor: Any) -> None:
    entries_table_rebuild(schema_editor.connection, rowid=False)


def with_rowid(apps: Any, schema_editor: Any) -> None:
    entries_table_rebuild(schema_editor.connection, rowid=True)


class Migration(migrations.Migration):
    dependencies = [("microblog_timelines", "0002_fanout_job_progress_at")]

    operations = [migrations.RunPython(without_rowid, with_rowid, elidable=False)]
