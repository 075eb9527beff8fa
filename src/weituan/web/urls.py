"""Browser URLs of the UI shell."""

from django.urls import path

from weituan.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
]
