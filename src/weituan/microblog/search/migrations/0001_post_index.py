"""The post index: FTS5 on SQLite, a tsvector column with a GIN index on PostgreSQL."""

from django.db import migrations

from weituan.microblog.search import store


def create_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        for statement in store.POSTGRES_CREATE.split(";"):
            schema_editor.execute(statement)
    else:
        schema_editor.execute(store.SQLITE_CREATE)


def drop_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    schema_editor.execute(store.DROP)


class Migration(migrations.Migration):
    initial = True

    dependencies = [("microblog", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
