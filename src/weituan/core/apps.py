from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "weituan.core"
    label = "core"
