"""Browser URLs of microblog."""

from django.urls import path  # noqa: F401

app_name = "microblog"
urlpatterns: list = []
