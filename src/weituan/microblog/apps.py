from django.apps import AppConfig


class MicroblogConfig(AppConfig):
    name = "weituan.microblog"
    label = "microblog"
