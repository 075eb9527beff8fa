"""A price in yen is not read as one in yuan: every page that shows money (the card, the deal page, my
orders, the merchant's deal, a refusal, a link preview) writes the yen as "JP¥" and the yuan as "¥", in
every language."""

from typing import Any

import pytest
from django.test import Client

from weituan.deals.facade import deal_previews
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up

pytestmark = pytest.mark.django_db


def _browser(user: Any, language: str) -> Client:
    browser = Client(HTTP_ACCEPT_LANGUAGE=language)
    browser.force_login(user)
    return browser


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_deal_in_yen_shows_jp_yen_and_one_in_yuan_shows_yen_sign(
    shopper: Any, merchant: Any, make_live_deal: Any, language: str
) -> None:
    yen = make_live_deal(currency="JPY", list_price=2000, deal_price=1000, tipping_point=1)
    yuan = make_live_deal(list_price=20000, deal_price=9900, tipping_point=1)
    browser = _browser(shopper, language)

    card = browser.get(f"/deals/{yen.id}/card").content.decode()
    assert '<span class="price">JP¥1,000</span>' in card
    assert '<s class="list-price muted">JP¥2,000</s>' in card
    yuan_card = browser.get(f"/deals/{yuan.id}/card").content.decode()
    assert '<span class="price">¥99.00</span>' in yuan_card and "JP¥" not in yuan_card
    assert "JP¥1,000" in browser.get(f"/deals/{yen.id}/").content.decode()
    assert deal_previews([yen.id])[yen.id].description == "JP¥1,000 · JP¥2,000 · -50%"

    # Without yen in the wallet, the refusal names both amounts in yen.
    refused = browser.post(
        f"/deals/{yen.id}/checkout", {"quantity": "1", "unit_price": "1000"}, follow=True
    ).content.decode()
    assert "JP¥0" in refused and "JP¥1,000" in refused

    wallet_top_up(user=shopper, amount=5000, currency="JPY")
    wallet_top_up(user=shopper, amount=50_000)
    order_place(deal_id=yen.id, buyer=shopper, quantity=1)
    order_place(deal_id=yuan.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=yen.id)
    orders = browser.get("/me/orders/").content.decode()
    assert "<td>JP¥1,000</td>" in orders and "<td>¥99.00</td>" in orders
    seller = _browser(merchant, language).get(f"/merchant/deals/{yen.id}/").content.decode()
    assert "<td>JP¥1,000</td>" in seller
