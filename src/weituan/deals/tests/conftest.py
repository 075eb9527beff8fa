"""Fixtures of the deals tests: live deals of the merchant persona, funded wallets and a hosted card
provider."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from weituan.deals.services.deals import DealInput, deal_create, deal_publish
from weituan.deals.services.gateways import gateway_register, gateways_configure
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.fake_provider import (
    API_KEY,
    WEBHOOK_SECRET,
    FakeProvider,
    card_gateway,
    fake_provider_serving,
)


def live_deal(merchant: Any, **overrides: Any) -> Any:
    deal = draft_deal(merchant, **overrides)
    return deal_publish(deal_id=deal.id, by=merchant)


def draft_deal(merchant: Any, **overrides: Any) -> Any:
    """The merchant's draft of the deals tests' hot-pot deal, on sale from a minute ago for two days."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "title": "双人火锅套餐",
        "list_price": 20000,
        "deal_price": 9900,
        "max_quantity": 10,
        "tipping_point": 3,
        "per_user_limit": 1 if overrides.get("flash_batches") else 2,  # a flash sale sells one a buyer
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(days=2),
    }
    fields.update(overrides)
    return deal_create(merchant=merchant, data=DealInput(**fields))


@pytest.fixture
def make_live_deal(merchant: Any) -> Any:
    def make(**overrides: Any) -> Any:
        return live_deal(merchant, **overrides)

    return make


@pytest.fixture
def fund() -> Any:
    def top_up(user: Any, amount: int = 100_000, currency: str = "CNY") -> int:
        return wallet_top_up(user=user, amount=amount, currency=currency)

    return top_up


@pytest.fixture
def card_provider(monkeypatch: Any) -> Iterator[FakeProvider]:
    """The fake card provider, running, with the environment `card_gateway` reads pointing at it; the
    site's gateways are put back as configured afterwards."""
    configured = list(settings.DEALS_PAYMENT_GATEWAYS)
    with fake_provider_serving() as (fake, url):
        monkeypatch.setenv("CARD_PROVIDER_URL", url)
        monkeypatch.setenv("CARD_PROVIDER_API_KEY", API_KEY)
        monkeypatch.setenv("CARD_PROVIDER_WEBHOOK_SECRET", WEBHOOK_SECRET)
        try:
            yield fake
        finally:
            gateways_configure(configured)


@pytest.fixture
def provider(card_provider: FakeProvider) -> Any:
    """The fake provider and its gateway `card`, registered in code."""
    gateway = card_gateway()
    gateway_register(gateway)
    return card_provider, gateway
