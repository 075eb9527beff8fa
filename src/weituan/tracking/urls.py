"""Browser URLs of tracking: short links, the beacon, and PostHog-compatible capture."""

from django.urls import path, re_path

from weituan.tracking import views

app_name = "tracking"
urlpatterns = [
    path("s/<str:code>", views.short_link_redirect, name="short_link"),
    path("collect", views.collect, name="collect"),
    path("collect.js", views.collect_js, name="collect_js"),
    re_path(r"^(?:capture|batch|e|track|engage|i/v0/e)/?$", views.posthog_capture, name="posthog_capture"),
    re_path(r"^(?:decide|flags)/?$", views.posthog_decide, name="posthog_decide"),
]
