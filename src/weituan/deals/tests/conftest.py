"""Fixtures of the deals tests: live deals of the merchant persona and funded wallets."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.deals.services.deals import DealInput, deal_create, deal_publish
from weituan.deals.services.wallet import wallet_top_up


def live_deal(merchant: Any, **overrides: Any) -> Any:
    now = timezone.now()
    fields: dict[str, Any] = {
        "title": "双人火锅套餐",
        "list_price": 20000,
        "deal_price": 9900,
        "max_quantity": 10,
        "tipping_point": 3,
        "per_user_limit": 2,
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(days=2),
    }
    fields.update(overrides)
    deal = deal_create(merchant=merchant, data=DealInput(**fields))
    return deal_publish(deal_id=deal.id, by=merchant)


@pytest.fixture
def make_live_deal(merchant: Any) -> Any:
    def make(**overrides: Any) -> Any:
        return live_deal(merchant, **overrides)

    return make


@pytest.fixture
def fund() -> Any:
    def top_up(user: Any, amount: int = 100_000) -> int:
        return wallet_top_up(user=user, amount=amount)

    return top_up
