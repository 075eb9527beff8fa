"""Browser URLs of deals."""

from django.urls import path  # noqa: F401

app_name = "deals"
urlpatterns: list = []
