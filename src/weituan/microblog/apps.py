from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MicroblogConfig(AppConfig):
    name = "weituan.microblog"
    label = "microblog"

    def ready(self) -> None:
        from weituan.microblog.row_versions import row_versions_after_migrate

        # Sent once per app after every migrate; the versions need doing once, after this app's.
        post_migrate.connect(row_versions_after_migrate, sender=self, dispatch_uid="microblog-row-versions")
