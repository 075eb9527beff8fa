"""The caller's vouchers through the API are paged by id as the API's other lists are (Mastodon's
`max_id`, `since_id`, `min_id` and the `Link` header): following the next links reads every voucher once,
newest first, the previous links read them back, and each voucher carries its `id`, in the OpenAPI
document too; the rest of a voucher's shape is as it was."""

import re
from typing import Any

import pytest

from weituan.core.ids import MAX_ID
from weituan.deals.models import Voucher
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def _links(response: Any) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response.get("Link", ""))}


@pytest.fixture
def seven_vouchers(shopper, outsider, make_live_deal, fund) -> list[int]:
    fund(shopper)
    fund(outsider)
    deal = make_live_deal(deal_price=100, max_quantity=20, per_user_limit=10, tipping_point=1)
    order_place(deal_id=deal.id, buyer=shopper, quantity=4)
    order_place(deal_id=deal.id, buyer=outsider, quantity=2)  # not theirs: never listed
    order_place(deal_id=deal.id, buyer=shopper, quantity=3)
    deal_tip_check(deal_id=deal.id)
    return list(Voucher.objects.filter(holder=shopper).order_by("-id").values_list("id", flat=True))


def test_every_voucher_is_read_once_following_the_links(api_as, shopper, seven_vouchers):
    client = api_as(shopper)
    url, pages, seen = "/api/v1/vouchers?limit=3", [], []
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        if not page:
            assert "Link" not in response
            break
        pages.append([voucher["id"] for voucher in page])
        links = _links(response)
        assert set(links) == {"next", "prev"}
        # The other parameters are kept; only the cursor changes.
        assert links["next"] == f"http://testserver/api/v1/vouchers?limit=3&max_id={page[-1]['id']}"
        assert links["prev"] == f"http://testserver/api/v1/vouchers?limit=3&min_id={page[0]['id']}"
        seen.append(links["prev"])
        url = links["next"]
    assert pages == [seven_vouchers[0:3], seven_vouchers[3:6], seven_vouchers[6:7]]

    # Back from the last page: the vouchers just newer than each page's first, newest first.
    back = [[voucher["id"] for voucher in client.get(prev).json()] for prev in seen]
    assert back == [[], seven_vouchers[0:3], seven_vouchers[3:6]]
    # `since_id`: the newest ones newer than it, up to the limit.
    since = client.get(f"/api/v1/vouchers?limit=2&since_id={seven_vouchers[5]}").json()
    assert [voucher["id"] for voucher in since] == seven_vouchers[0:2]
    # Bounds on either side.
    between = client.get(f"/api/v1/vouchers?max_id={seven_vouchers[1]}&since_id={seven_vouchers[4]}").json()
    assert [voucher["id"] for voucher in between] == seven_vouchers[2:4]


def test_a_voucher_keeps_its_shape_with_its_id(api_as, shopper, seven_vouchers):
    (first,) = api_as(shopper).get("/api/v1/vouchers?limit=1").json()
    voucher = Voucher.objects.get(id=seven_vouchers[0])
    assert first["id"] == voucher.id
    assert set(first) == {
        "id",
        "code",
        "display_code",
        "deal_id",
        "deal_title",
        "state",
        "expires_at",
        "redeemed_at",
        "redeemed_by",
        "qr_png",
        "qr_svg",
    }
    assert (first["code"], first["deal_id"], first["state"]) == (voucher.code, voucher.deal_id, "valid")
    spec = api_as(shopper).get("/api/v1/openapi.json").json()
    schema = spec["components"]["schemas"]["VoucherOut"]
    assert schema["properties"]["id"]["type"] == "integer" and "id" in schema["required"]
    names = {parameter["name"] for parameter in spec["paths"]["/api/v1/vouchers"]["get"]["parameters"]}
    assert names == {"limit", "max_id", "since_id", "min_id"}


def test_the_limit_and_cursors_are_held_within_bounds(api_as, shopper, seven_vouchers):
    client = api_as(shopper)
    assert len(client.get("/api/v1/vouchers?limit=0").json()) == 1
    assert len(client.get("/api/v1/vouchers?limit=1000").json()) == 7
    # A cursor beyond any id is the largest; one below zero is zero.
    huge = client.get(f"/api/v1/vouchers?max_id={MAX_ID * 10}")
    assert [voucher["id"] for voucher in huge.json()] == seven_vouchers
    assert client.get("/api/v1/vouchers?max_id=-5").json() == []
    refused = client.get("/api/v1/vouchers?max_id=older")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid")
