from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "weituan.tracking"
    label = "tracking"
