"""The Redis stock gate's scripts run by hash and are loaded when the server does not hold them: a
take, a refusal and a give-back by scripts new to the server count exactly (PostgreSQL + Redis)."""

import uuid
from typing import Any

import pytest

from weituan.core.redis import get_redis, redis_enabled, rkey
from weituan.core.testing import make_user
from weituan.deals.errors import InsufficientBalance, SoldOut
from weituan.deals.services import stock
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _gate(deal_id: int, buyer_id: int) -> tuple[int, int]:
    """(units sold, the buyer's own units) as the gate counts them."""
    client = get_redis()
    sold = client.hget(rkey("deal", deal_id, "stock"), "sold")
    own = client.hget(rkey("deal", deal_id, "quota"), f"o:{buyer_id}")
    return int(sold or 0), int(own or 0)


def _scripts_unknown_to_the_server(monkeypatch: Any) -> None:
    """The gate's scripts as the server has never seen them (as after a restart or a SCRIPT FLUSH,
    without flushing the scripts of everyone else on the server): the same Lua, another hash."""
    client = get_redis()
    fresh = f"\n-- {uuid.uuid4()}"
    monkeypatch.setattr(
        stock,
        "_scripts",
        {
            (id(client), source): client.register_script(source + fresh)
            for source in (stock._TAKE, stock._GIVE)
        },
    )


def test_the_gate_counts_exactly_with_scripts_the_server_does_not_hold(merchant, monkeypatch) -> None:
    assert redis_enabled(), "the stock gate needs REDIS_URL"
    deal = live_deal(merchant, max_quantity=3, tipping_point=3, per_user_limit=3, deal_price=100)
    buyer, poor = make_user("gate_buyer"), make_user("gate_poor")
    wallet_top_up(user=buyer, amount=10_000)
    wallet_top_up(user=poor, amount=50)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    _scripts_unknown_to_the_server(monkeypatch)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    assert _gate(deal.id, buyer.id) == (2, 2)
    _scripts_unknown_to_the_server(monkeypatch)
    # Taken in Redis, refused by the database: given back (the give script loaded again).
    with pytest.raises(InsufficientBalance):
        order_place(deal_id=deal.id, buyer=poor, quantity=1)
    assert _gate(deal.id, poor.id) == (2, 0)
    _scripts_unknown_to_the_server(monkeypatch)
    with pytest.raises(SoldOut):  # refused by the gate itself
        order_place(deal_id=deal.id, buyer=buyer, quantity=2)
    assert _gate(deal.id, buyer.id) == (2, 2)
