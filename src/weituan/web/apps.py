from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "weituan.web"
    label = "web"
