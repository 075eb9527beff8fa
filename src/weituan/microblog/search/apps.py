from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "weituan.microblog.search"
    label = "microblog_search"
