"""A payment provider plugged in by configuration: WEITUAN_PAYMENT_GATEWAYS names it, the app registers it
when it starts, beside the wallet, and a buyer chooses it through the API or on the deal page; a name
the site does not offer is refused before anything moves, and a setting that gives no gateway stops
start-up."""

from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from weituan.core.env import env_dotted_paths
from weituan.deals.errors import UnknownGateway
from weituan.deals.models import Deal, Entry, Order, OrderState, Posting, UserDealQuota
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.gateways import gateway_get, gateways_configure, gateways_offered
from weituan.deals.tests.fake_provider import FakeProvider

pytestmark = pytest.mark.django_db

CARD = "weituan.deals.tests.fake_provider.card_gateway"


@pytest.fixture
def card_configured(card_provider: FakeProvider, settings: Any) -> FakeProvider:
    """The fake provider named in the setting, and the app started again (its `ready`) to register it."""
    settings.DEALS_PAYMENT_GATEWAYS = [CARD]
    apps.get_app_config("deals").ready()
    return card_provider


def _order(api: Any, deal: Deal, body: dict[str, Any], **headers: Any) -> Any:
    return api.post(f"/api/v1/deals/{deal.id}/orders", body, content_type="application/json", **headers)


def _moved(deal: Deal) -> tuple[Any, ...]:
    deal.refresh_from_db()
    return (
        deal.sold,
        Order.objects.count(),
        Posting.objects.count(),
        Entry.objects.count(),
        list(UserDealQuota.objects.values_list("own", "gifts")),
    )


def test_a_provider_named_in_the_setting_takes_orders_through_the_api(
    card_configured: FakeProvider, api_as: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    assert [gateway.name for gateway in gateways_offered()] == ["wallet", "card"]
    deal = make_live_deal(tipping_point=2, per_user_limit=2)
    fund(outsider)

    by_card = _order(api_as(shopper), deal, {"quantity": 2, "gateway": "card"})
    assert by_card.status_code == 201, by_card.content
    order = Order.objects.get(id=by_card.json()["id"])
    assert (by_card.json()["state"], by_card.json()["gateway"]) == ("authorized", "card")
    assert (order.gateway, order.payment_ref) == ("card", "auth_1")
    assert card_configured.calls == [("/authorizations", f"order:{order.id}:authorize")]
    # Nothing moved in the buyer's wallet: the money is held at the provider.
    assert wallet_of(user=shopper).available == 0

    by_wallet = _order(api_as(outsider), deal, {"quantity": 1})
    assert (by_wallet.status_code, by_wallet.json()["gateway"]) == (201, "wallet")
    assert wallet_of(user=outsider).available == 100_000 - deal.deal_price

    deal_tip_check(deal_id=deal.id)
    assert Order.objects.get(id=order.id).state == OrderState.CAPTURED
    assert card_configured.calls[-1] == ("/authorizations/auth_1/capture", f"order:{order.id}:capture")
    assert ledger_report().ok


def test_a_gateway_the_site_does_not_offer_is_refused_and_moves_nothing(
    card_configured: FakeProvider, api_as: Any, shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(tipping_point=5, per_user_limit=2)
    fund(shopper)
    api = api_as(shopper)
    before = (_moved(deal), wallet_of(user=shopper))
    for name in ("paypal", "Card", "wallet/../card"):
        refused = _order(api, deal, {"quantity": 1, "gateway": name}, HTTP_IDEMPOTENCY_KEY="buy-1")
        assert refused.status_code == 422, refused.content
        assert refused.json() == {"error": f"Unknown payment method {name!r}", "code": "unknown_gateway"}
        assert (_moved(deal), wallet_of(user=shopper)) == before
        assert card_configured.calls == []
    # A refusal kept nothing under the key: it now buys, and the same key asking for the card is refused.
    placed = _order(api, deal, {"quantity": 1, "gateway": "wallet"}, HTTP_IDEMPOTENCY_KEY="buy-1")
    assert (placed.status_code, placed.json()["gateway"]) == (201, "wallet")
    mismatch = _order(api, deal, {"quantity": 1, "gateway": "card"}, HTTP_IDEMPOTENCY_KEY="buy-1")
    assert (mismatch.status_code, mismatch.json()["code"]) == (422, "idempotency_mismatch")
    assert card_configured.calls == []
    assert Order.objects.count() == 1


def test_the_deal_page_offers_the_configured_gateways(
    card_configured: FakeProvider, shopper: Any, make_live_deal: Any
) -> None:
    deal = make_live_deal(tipping_point=5)
    browser = Client()
    browser.force_login(shopper)
    page = browser.get(f"/deals/{deal.id}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert (
        '<select name="gateway"><option value="wallet">钱包</option><option value="card">银行卡</option>'
        in page
    )
    assert "付款方式" in page

    bought = browser.post(
        f"/deals/{deal.id}/checkout",
        {"quantity": "1", "unit_price": str(deal.deal_price), "checkout_token": "t-1", "gateway": "card"},
    )
    assert bought.status_code == 302
    order = Order.objects.get(buyer=shopper)
    assert (order.gateway, order.state) == ("card", OrderState.AUTHORIZED)

    refused = browser.post(
        f"/deals/{deal.id}/checkout",
        {"quantity": "1", "unit_price": str(deal.deal_price), "checkout_token": "t-2", "gateway": "paypal"},
        follow=True,
    )
    assert "请选择这里提供的支付方式。" in refused.content.decode()
    assert Order.objects.count() == 1

    # With the wallet alone there is nothing to choose.
    gateways_configure([])
    assert 'name="gateway"' not in browser.get(f"/deals/{deal.id}/").content.decode()


def test_a_setting_that_gives_no_gateway_stops_start_up(
    card_provider: FakeProvider, monkeypatch: Any
) -> None:
    cases = {
        "weituan.deals.tests.no_such_module.card": "WEITUAN_PAYMENT_GATEWAYS: cannot import weituan.deals.tests.no_such_module.card",
        "weituan.deals.tests.fake_provider.API_KEY": "WEITUAN_PAYMENT_GATEWAYS: weituan.deals.tests.fake_provider.API_KEY is neither a gateway class nor a function",
        "weituan.deals.tests.fake_provider.FakeProvider": "WEITUAN_PAYMENT_GATEWAYS: weituan.deals.tests.fake_provider.FakeProvider() gave FakeProvider, not a PaymentGateway",
        "weituan.deals.services.gateways.WalletGateway": "WEITUAN_PAYMENT_GATEWAYS: two gateways are named 'wallet'",
    }  # fmt: skip
    for path, message in cases.items():
        with pytest.raises(ImproperlyConfigured) as stopped:
            gateways_configure([path])
        assert str(stopped.value).startswith(message), stopped.value
    with pytest.raises(ImproperlyConfigured, match="two gateways are named 'card'"):
        gateways_configure([CARD, CARD])
    monkeypatch.delenv("CARD_PROVIDER_URL")
    with pytest.raises(ImproperlyConfigured) as stopped:
        gateways_configure([CARD])
    assert str(stopped.value) == f"WEITUAN_PAYMENT_GATEWAYS: {CARD}() failed: KeyError: 'CARD_PROVIDER_URL'"
    # A refused setting leaves the gateways as they were.
    assert [gateway.name for gateway in gateways_offered()] == ["wallet"]
    with pytest.raises(UnknownGateway):
        gateway_get("card")
    # The setting's own shape is checked when the settings are read.
    monkeypatch.setenv("WEITUAN_PAYMENT_GATEWAYS", f"{CARD}, card")
    with pytest.raises(ImproperlyConfigured) as stopped:
        env_dotted_paths("WEITUAN_PAYMENT_GATEWAYS")
    assert str(stopped.value) == (
        "WEITUAN_PAYMENT_GATEWAYS must list dotted paths like package.module.name, not 'card'"
    )
    monkeypatch.setenv("WEITUAN_PAYMENT_GATEWAYS", f" {CARD} ,")
    assert env_dotted_paths("WEITUAN_PAYMENT_GATEWAYS") == [CARD]
