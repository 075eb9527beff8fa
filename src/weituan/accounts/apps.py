from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "weituan.accounts"
    label = "accounts"
