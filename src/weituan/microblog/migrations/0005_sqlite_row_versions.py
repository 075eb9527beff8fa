"""On SQLite, a `row_version` column and its triggers on the tables a rendered status comes from (see
`weituan.microblog.row_versions`); nothing on PostgreSQL, whose row versions are built in."""

from typing import Any

from django.db import migrations

from weituan.microblog.row_versions import row_versions_ensure


def forwards(apps: Any, schema_editor: Any) -> None:
    row_versions_ensure(schema_editor.connection, apps)


class Migration(migrations.Migration):
    dependencies = [
        ("microblog", "0004_topic_counts_and_leaner_indexes"),
        ("accounts", "0002_profile_flags_and_merchant_applications"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
