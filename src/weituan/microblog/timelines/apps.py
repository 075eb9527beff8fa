from django.apps import AppConfig


class TimelinesConfig(AppConfig):
    name = "weituan.microblog.timelines"
    label = "microblog_timelines"
