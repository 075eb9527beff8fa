from django.apps import AppConfig


class SimulateConfig(AppConfig):
    name = "weituan.simulate"
    label = "simulate"
