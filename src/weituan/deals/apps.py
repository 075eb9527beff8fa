from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "weituan.deals"
    label = "deals"
