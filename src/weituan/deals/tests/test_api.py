import json
from datetime import timedelta

import pytest
from django.utils import timezone

from weituan.core.models import IdempotencyRecord
from weituan.deals.models import Deal, Order, Posting, Voucher
from weituan.deals.services.deals import deal_tip_check

pytestmark = pytest.mark.django_db


def post(client, url, body=None, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url, data=json.dumps(body or {}), content_type="application/json", **headers)


def deal_body(**overrides):
    now = timezone.now()
    body = {
        "title": "单人下午茶",
        "list_price": 8800,
        "deal_price": 3900,
        "tipping_point": 1,
        "max_quantity": 9,
        "per_user_limit": 2,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
    }
    body.update(overrides)
    return body


def test_merchant_creates_and_publishes_and_shopper_buys(api_as, merchant, shopper, outsider):
    seller = api_as(merchant)
    created = post(seller, "/api/v1/deals", deal_body())
    assert created.status_code == 201, created.content
    deal_id = created.json()["id"]
    assert created.json()["state"] == "draft"
    # A draft is invisible to others: reading it, or buying it, finds no such deal.
    assert api_as(outsider).get(f"/api/v1/deals/{deal_id}").status_code == 404
    post(api_as(outsider), "/api/v1/wallet/top_up", {"amount": 10000})
    bought = post(api_as(outsider), f"/api/v1/deals/{deal_id}/orders", {"quantity": 1})
    assert (bought.status_code, bought.json()) == (404, {"error": "No such deal", "code": "not_found"})
    assert not Order.objects.filter(deal_id=deal_id).exists()
    published = post(seller, f"/api/v1/deals/{deal_id}/publish")
    assert published.json()["state"] == "live"
    buyer = api_as(shopper)
    assert post(buyer, "/api/v1/wallet/top_up", {"amount": 10000}).json() == {
        "currency": "CNY",
        "available": 10000,
        "held": 0,
    }
    placed = post(buyer, f"/api/v1/deals/{deal_id}/orders", {"quantity": 2, "unit_price": 3900}, key="k-1")
    assert placed.status_code == 201, placed.content
    order = placed.json()
    # The deal tipped (tipping point 1): the hold was captured once the tip check ran.
    deal_tip_check(deal_id=deal_id)
    got = buyer.get(f"/api/v1/orders/{order['id']}").json()
    assert (got["state"], got["amount"], len(got["vouchers"])) == ("captured", 7800, 2)
    assert buyer.get("/api/v1/wallet").json() == {"currency": "CNY", "available": 2200, "held": 0}
    vouchers = buyer.get("/api/v1/vouchers").json()
    assert {v["state"] for v in vouchers} == {"valid"}
    code = vouchers[0]["code"]
    redeemed = post(seller, f"/api/v1/vouchers/{code}/redeem")
    assert redeemed.json()["redeemed_by"] == merchant.username
    again = post(seller, f"/api/v1/vouchers/{code}/redeem")
    assert again.status_code == 409
    assert again.json()["code"] == "already_redeemed"
    assert f"by @{merchant.username}" in again.json()["error"]


def test_idempotency_key_replays_and_rejects_mismatch(api_as, merchant, shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=5)
    fund(shopper, 100_000)
    buyer = api_as(shopper)
    first = post(buyer, f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, key="same")
    replay = post(buyer, f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, key="same")
    assert (first.status_code, replay.status_code) == (201, 201)
    assert first.json() == replay.json()
    assert Order.objects.count() == 1
    mismatch = post(buyer, f"/api/v1/deals/{deal.id}/orders", {"quantity": 2}, key="same")
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "idempotency_mismatch"
    assert Order.objects.count() == 1
    deal.refresh_from_db()
    assert deal.sold == 1


def test_refusal_stores_no_idempotency_record_and_moves_nothing(api_as, shopper, make_live_deal):
    deal = make_live_deal()
    buyer = api_as(shopper)
    response = post(buyer, f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}, key="broke")
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    assert (Order.objects.count(), Posting.objects.count(), IdempotencyRecord.objects.count()) == (0, 0, 0)
    deal.refresh_from_db()
    assert deal.sold == 0


def test_tampered_price_refused(api_as, shopper, make_live_deal, fund):
    deal = make_live_deal()
    fund(shopper)
    postings = Posting.objects.count()
    response = post(api_as(shopper), f"/api/v1/deals/{deal.id}/orders", {"quantity": 1, "unit_price": 1})
    assert (response.status_code, response.json()["code"]) == (422, "price_mismatch")
    assert (Order.objects.count(), Posting.objects.count()) == (0, postings)


def test_more_gifts_than_units_is_refused_with_its_own_code(api_as, shopper, make_live_deal, fund):
    deal = make_live_deal()
    fund(shopper)
    postings = Posting.objects.count()
    url = f"/api/v1/deals/{deal.id}/orders"
    response = post(api_as(shopper), url, {"quantity": 1, "gift_quantity": 2})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_quantity")
    assert (Order.objects.count(), Posting.objects.count()) == (0, postings)
    assert post(api_as(shopper), url, {"quantity": 1, "gift_quantity": 0}).status_code == 201


def test_merchant_cannot_act_on_another_merchants_deal(api_as, make_live_deal, shopper, fund):
    from weituan.core.testing import make_user

    deal = make_live_deal(tipping_point=1)
    fund(shopper)
    post(api_as(shopper), f"/api/v1/deals/{deal.id}/orders", {"quantity": 1})
    deal_tip_check(deal_id=deal.id)
    voucher = Voucher.objects.get()
    rival = make_user("rival_shop", merchant=True)
    draft = post(api_as(rival), "/api/v1/deals", deal_body()).json()
    mine = api_as(rival)
    publish = post(mine, f"/api/v1/deals/{deal.id}/publish")
    assert (publish.status_code, publish.json()["code"]) == (403, "not_your_deal")
    redeem = post(mine, f"/api/v1/vouchers/{voucher.code}/redeem")
    assert (redeem.status_code, redeem.json()["code"]) == (403, "not_your_deal")
    voucher.refresh_from_db()
    assert (voucher.state, voucher.redeemed_by_id) == ("valid", None)
    assert Deal.objects.get(id=draft["id"]).state == "draft"


def test_shopper_cannot_create_deals_and_top_up_is_dev_only(api_as, shopper, settings):
    response = post(api_as(shopper), "/api/v1/deals", deal_body())
    assert (response.status_code, response.json()["code"]) == (403, "not_merchant")
    settings.PROFILE = "production"
    refused = post(api_as(shopper), "/api/v1/wallet/top_up", {"amount": 100})
    assert (refused.status_code, refused.json()["code"]) == (403, "top_up_disabled")
    assert Posting.objects.count() == 0


def test_team_api_and_openapi(api_as, merchant, shopper, outsider, make_live_deal, fund):
    deal = make_live_deal(team_price=6900, team_size=2, tipping_point=1)
    fund(shopper)
    fund(outsider)
    started = post(
        api_as(shopper),
        f"/api/v1/deals/{deal.id}/orders",
        {"quantity": 1, "team": "start", "unit_price": 6900},
    )
    team_id = started.json()["team_id"]
    team = api_as(outsider).get(f"/api/v1/teams/{team_id}").json()
    assert (team["members"], team["size"], team["state"], team["member_names"]) == (1, 2, "open", ["alice"])
    joined = post(api_as(outsider), f"/api/v1/deals/{deal.id}/orders", {"quantity": 1, "team": team_id})
    assert joined.status_code == 201
    deal_tip_check(deal_id=deal.id)
    assert api_as(outsider).get(f"/api/v1/teams/{team_id}").json()["state"] == "filled"
    assert set(Order.objects.values_list("state", flat=True)) == {"captured"}
    spec = api_as(shopper).get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/deals",
        "/api/v1/deals/{deal_id}",
        "/api/v1/deals/{deal_id}/publish",
        "/api/v1/deals/{deal_id}/orders",
        "/api/v1/orders/{order_id}",
        "/api/v1/orders/{order_id}/refund",
        "/api/v1/teams/{team_id}",
        "/api/v1/vouchers",
        "/api/v1/vouchers/{code}/redeem",
        "/api/v1/wallet",
        "/api/v1/wallet/top_up",
    ):
        assert path in spec["paths"], path
    params = spec["paths"]["/api/v1/deals/{deal_id}/orders"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" for p in params)


def test_the_openapi_document_names_every_order_state_and_the_orders_refund(api_as, shopper):
    from weituan.deals.models import ORDER_GRAPH

    schemas = api_as(shopper).get("/api/v1/openapi.json").json()["components"]["schemas"]
    order = schemas["OrderOut"]["properties"]
    assert order["state"]["enum"] == ORDER_GRAPH.states
    assert "voiding" in order["state"]["enum"]
    assert "`voiding`: hold being released" in order["state"]["description"]
    assert "refund" in order and "refund" not in schemas["OrderOut"]["required"]
    refund = schemas["RefundOut"]["properties"]
    assert refund["state"]["enum"] == ["completed", "declined", "requested"]
    assert "refund pending" in refund["state"]["description"]
    assert set(refund) == {"state", "amount", "requested_at"}


def test_a_wallet_of_an_unknown_currency_is_refused_not_shown_empty(api_as, shopper, fund):
    fund(shopper, 1_234)
    api = api_as(shopper)
    assert api.get("/api/v1/wallet").json() == {"currency": "CNY", "available": 1_234, "held": 0}
    assert api.get("/api/v1/wallet?currency=USD").json() == {"currency": "USD", "available": 0, "held": 0}
    refused = api.get("/api/v1/wallet?currency=zzz")
    assert (refused.status_code, refused.json()) == (
        422,
        {"error": "Unknown currency zzz", "code": "invalid_currency"},
    )


def test_gifts_asked_of_a_deal_without_gifts_are_refused_in_those_words(
    api_as, make_live_deal, shopper, fund
):
    deal = make_live_deal(per_user_limit=2, gift_limit=0)
    fund(shopper)
    refused = post(api_as(shopper), f"/api/v1/deals/{deal.id}/orders", {"quantity": 2, "gift_quantity": 1})
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "This deal sells no gifts: you may buy 2 for yourself",
        "code": "per_user_limit",
        "per_user_limit": 2,
        "gift_limit": 0,
    }
    assert not Order.objects.exists()
    assert Deal.objects.get(id=deal.id).sold == 0


def test_asking_more_than_the_units_left_says_how_many_are_left(
    api_as, make_live_deal, shopper, outsider, fund
):
    from django.test import Client

    deal = make_live_deal(max_quantity=3, tipping_point=1, per_user_limit=2)
    fund(shopper)
    fund(outsider)
    assert post(api_as(outsider), f"/api/v1/deals/{deal.id}/orders", {"quantity": 2}).status_code == 201
    postings = Posting.objects.count()
    refused = post(api_as(shopper), f"/api/v1/deals/{deal.id}/orders", {"quantity": 2})
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "Only 1 unit of this deal is left",
        "code": "sold_out",
        "units_left": 1,
    }
    assert (Order.objects.filter(buyer=shopper).count(), Posting.objects.count()) == (0, postings)
    assert Deal.objects.get(id=deal.id).sold == 2
    # The deal page says the same in the shopper's language.
    page = Client(headers={"Accept-Language": "zh-hans"})
    page.force_login(shopper)
    form = {"quantity": "2", "unit_price": str(deal.deal_price), "checkout_token": "two-of-one"}
    answer = page.post(f"/deals/{deal.id}/checkout", form, follow=True)
    assert "只剩 1 件" in answer.content.decode()
    assert not Order.objects.filter(buyer=shopper).exists()
    # The one left is sold.
    assert post(api_as(shopper), f"/api/v1/deals/{deal.id}/orders", {"quantity": 1}).status_code == 201
