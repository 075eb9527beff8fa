from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TimelinesConfig(AppConfig):
    name = "weituan.microblog.timelines"
    label = "microblog_timelines"

    def ready(self) -> None:
        from weituan.microblog.timelines.sqlite_table import entries_table_after_migrate

        # After any migrate, which may have rebuilt the entries table with a rowid (SQLite).
        post_migrate.connect(entries_table_after_migrate, sender=self, dispatch_uid="timelines-entries-table")
