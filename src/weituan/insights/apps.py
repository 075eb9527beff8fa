from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "weituan.insights"
    label = "insights"
