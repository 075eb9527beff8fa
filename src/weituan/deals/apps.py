from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "weituan.deals"
    label = "deals"

    def ready(self) -> None:
        from django.conf import settings

        from weituan.deals.services.gateways import gateways_configure

        gateways_configure(settings.DEALS_PAYMENT_GATEWAYS)
