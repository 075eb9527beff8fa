from django.apps import AppConfig


class PushConfig(AppConfig):
    name = "weituan.push"
    label = "push"
