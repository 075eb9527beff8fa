"""A flash sale through the API: the deal says when its next batch goes on sale and how many it brings,
and an order between batches is refused as sold out with those facts, so the buyer knows to come back
(before the first batch, with the same code and facts, as a sale that has not started);
nothing is taken or held by the refusal. Once a deal has ended it has no units left and no batch to come,
on its card as in the API."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from weituan.deals.models import Deal, FlashBatch, Order
from weituan.deals.services.deals import deals_sweep
from weituan.deals.services.orders import order_place
from weituan.deals.tests.test_pages import DRAFT_FORM

pytestmark = pytest.mark.django_db


def _order(client, deal_id):
    return client.post(
        f"/api/v1/deals/{deal_id}/orders", data=json.dumps({"quantity": 1}), content_type="application/json"
    )


def test_between_batches_the_api_says_when_the_next_goes_on_sale(
    api_as, make_live_deal, shopper, outsider, fund
):
    now = timezone.now()
    later = (now + timedelta(hours=2)).replace(microsecond=0)
    deal = make_live_deal(
        max_quantity=5, tipping_point=1, flash_batches=((now - timedelta(seconds=1), 1), (later, 4))
    )
    fund(shopper)
    fund(outsider)
    buyer, late = api_as(shopper), api_as(outsider)
    shown = buyer.get(f"/api/v1/deals/{deal.id}").json()
    assert (shown["released"], shown["units_left"]) == (1, 1)
    assert (shown["next_batch_at"], shown["next_batch_quantity"]) == (
        later.isoformat().replace("+00:00", "Z"),
        4,
    )
    assert _order(buyer, deal.id).status_code == 201

    refused = _order(late, deal.id)
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert (body["code"], body["next_batch_quantity"]) == ("sold_out", 4)
    assert body["next_batch_at"] == later.isoformat()
    assert "next batch of 4" in body["error"]
    assert Order.objects.filter(buyer=outsider).count() == 0
    assert late.get("/api/v1/wallet").json()["held"] == 0
    assert Deal.objects.get(id=deal.id).sold == 1

    # Once the last batch is on sale there is no next one; once it is gone, sold out is all there is.
    FlashBatch.objects.filter(deal=deal, release_at=later).update(release_at=timezone.now())
    deals_sweep()
    shown = late.get(f"/api/v1/deals/{deal.id}").json()
    assert (shown["units_left"], shown["next_batch_at"], shown["next_batch_quantity"]) == (4, None, None)


def test_before_the_first_batch_the_api_says_the_sale_has_not_started(api_as, make_live_deal, shopper, fund):
    now = timezone.now()
    first = (now + timedelta(hours=1)).replace(microsecond=0)
    deal = make_live_deal(
        max_quantity=5, tipping_point=1, flash_batches=((first, 2), (first + timedelta(hours=1), 3))
    )
    fund(shopper)
    buyer = api_as(shopper)
    shown = buyer.get(f"/api/v1/deals/{deal.id}").json()
    assert (shown["released"], shown["units_left"], shown["next_batch_quantity"]) == (0, 0, 2)

    refused = _order(buyer, deal.id)
    assert refused.status_code == 409, refused.content
    # The code and facts a client acts on are those of any wait for a batch: come back then.
    assert refused.json() == {
        "error": f"This sale has not started; its first batch of 2 goes on sale at {first.isoformat()}",
        "code": "sold_out",
        "next_batch_at": first.isoformat(),
        "next_batch_quantity": 2,
    }
    assert Order.objects.filter(buyer=shopper).count() == 0
    assert buyer.get("/api/v1/wallet").json()["held"] == 0


def test_a_deal_that_is_not_a_flash_sale_has_no_batches_to_wait_for(api_as, make_live_deal, shopper, fund):
    deal = make_live_deal(max_quantity=1, tipping_point=1, per_user_limit=1)
    fund(shopper)
    Deal.objects.filter(id=deal.id).update(sold=1)
    refused = _order(api_as(shopper), deal.id)
    assert refused.status_code == 409
    assert refused.json() == {"error": "This deal has no units left", "code": "sold_out"}
    shown = api_as(shopper).get(f"/api/v1/deals/{deal.id}").json()
    assert (shown["next_batch_at"], shown["next_batch_quantity"]) == (None, None)


def test_an_ended_deal_has_no_units_left_nor_a_batch_to_come(api_as, make_live_deal, shopper, fund):
    from django.test import Client

    from weituan.deals.services.deals import deal_end

    now = timezone.now()
    flash = make_live_deal(
        max_quantity=5,
        tipping_point=3,
        flash_batches=((now - timedelta(seconds=1), 2), (now + timedelta(hours=1), 3)),
    )
    plain = make_live_deal(max_quantity=5, tipping_point=1)
    fund(shopper)
    order_place(deal_id=plain.id, buyer=shopper, quantity=1)
    for deal in (flash, plain):
        Deal.objects.filter(id=deal.id).update(ends_at=timezone.now() - timedelta(seconds=1))
        deal_end(deal_id=deal.id)
    assert list(
        Deal.objects.filter(id__in=(flash.id, plain.id)).order_by("id").values_list("state", flat=True)
    ) == [
        "failed",
        "closed",
    ]
    for deal in (flash, plain):
        shown = api_as(shopper).get(f"/api/v1/deals/{deal.id}").json()
        assert (shown["units_left"], shown["next_batch_at"], shown["next_batch_quantity"]) == (0, None, None)
        card = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/deals/{deal.id}/card").content.decode()
        assert "left" not in card and "next batch" not in card
    ended = Client(HTTP_ACCEPT_LANGUAGE="en").get(f"/deals/{plain.id}/card").content.decode()
    assert "Deal is on" in ended and "Ended" in ended


def test_a_flash_sale_asked_for_with_more_than_one_a_buyer_is_refused_not_lowered(api_as, merchant):
    body = {
        "title": "整点秒杀",
        "list_price": 8800,
        "deal_price": 990,
        "max_quantity": 4,
        "per_user_limit": 3,
        "gift_limit": 1,
        "starts_at": "2030-01-01T10:00:00",
        "ends_at": "2030-01-05T10:00:00",
        "flash_batches": [{"release_at": "2030-01-02T12:00:00", "quantity": 4}],
    }
    seller = api_as(merchant)
    refused = seller.post("/api/v1/deals", data=json.dumps(body), content_type="application/json")
    assert refused.status_code == 422, refused.content
    assert (refused.json()["code"], refused.json()["problem_codes"]) == (
        "invalid_deal",
        ["flash_one_per_user"],
    )
    assert "per_user_limit must be 1" in refused.json()["error"]
    assert not Deal.objects.exists() and not FlashBatch.objects.exists()

    made = seller.post(
        "/api/v1/deals",
        data=json.dumps({**body, "per_user_limit": 1, "gift_limit": 0}),
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    assert (made.json()["per_user_limit"], made.json()["gift_limit"]) == (1, 0)


def test_the_editor_says_beside_the_limit_that_a_flash_sale_sells_one_a_person(merchant):
    seller = Client()
    seller.force_login(merchant)
    form = {**DRAFT_FORM, "per_user_limit": "2", "flash_mode": "on", "flash_batches": "2030-01-02 20:00, 50"}
    chinese = seller.post("/merchant/deals/new", form, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    field = chinese[chinese.index('id="field-per_user_limit"') :]
    assert "秒杀每人限一件：请把每人限购设为 1，送人设为 0。" in field[: field.index("</div>")]
    assert not Deal.objects.exists()
    english = seller.post("/merchant/deals/new", {**form, "per_user_limit": "1"}, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 302
    assert (Deal.objects.get().flash_sale, Deal.objects.get().per_user_limit) == (True, 1)
