"""A buyer's orders through the API, as my orders shows them: the list, newest first and paged by id,
read in a fixed number of queries; and cancelling an order whose payment is only held, which releases
the hold and the stock, once, and is refused once the deal has tipped."""

import json

import pytest

from weituan.deals.models import Deal, Order, OrderState
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.refunds import order_refund

pytestmark = pytest.mark.django_db


def _post(client, url, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url, data="{}", content_type="application/json", **headers)


def test_my_orders_newest_first_paged_by_id(
    api_as, make_live_deal, shopper, outsider, fund, django_assert_num_queries
):
    paid_deal = make_live_deal(tipping_point=1, per_user_limit=3, refund_policy="anytime")
    held_deal = make_live_deal(tipping_point=5)
    fund(shopper)
    fund(outsider)
    paid = order_place(deal_id=paid_deal.id, buyer=shopper, quantity=2)
    deal_tip_check(deal_id=paid_deal.id)
    refunded = order_place(deal_id=paid_deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=paid_deal.id)
    order_refund(order_id=refunded.id, by=shopper)
    held = order_place(deal_id=held_deal.id, buyer=shopper, quantity=1)
    order_place(deal_id=held_deal.id, buyer=outsider, quantity=1)  # not theirs: never listed

    client = api_as(shopper)
    client.get("/api/v1/wallet")  # the caller's first request of the day also marks them as seen
    # The caller's token, the orders, and their vouchers and refunds, however many orders there are.
    with django_assert_num_queries(4):
        listed = client.get("/api/v1/orders").json()
    assert [order["id"] for order in listed] == [held.id, refunded.id, paid.id]
    assert [order["state"] for order in listed] == ["authorized", "refunded", "captured"]
    assert listed[1]["refund"]["state"] == "completed"
    assert listed[2]["vouchers"] == list(paid.vouchers.order_by("id").values_list("code", flat=True))
    assert len(listed[2]["vouchers"]) == 2
    # Each as reading it alone shows it.
    for order in listed:
        assert client.get(f"/api/v1/orders/{order['id']}").json() == order
    page = client.get(f"/api/v1/orders?limit=1&before={held.id}").json()
    assert [order["id"] for order in page] == [refunded.id]


def test_a_held_order_is_cancelled_through_the_api_once(api_as, make_live_deal, shopper, outsider, fund):
    deal = make_live_deal(tipping_point=3)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    client = api_as(shopper)
    assert client.get("/api/v1/wallet").json()["held"] == 2 * deal.deal_price

    # Another buyer's order is not theirs to cancel.
    assert _post(api_as(outsider), f"/api/v1/orders/{order.id}/cancel").status_code == 404
    assert Order.objects.get(id=order.id).state == OrderState.AUTHORIZED

    cancelled = _post(client, f"/api/v1/orders/{order.id}/cancel", key="c-1")
    assert cancelled.status_code == 200, cancelled.content
    assert (cancelled.json()["state"], cancelled.json()["end_reason"]) == ("voided", "cancelled")
    assert _post(client, f"/api/v1/orders/{order.id}/cancel", key="c-1").json() == cancelled.json()
    again = _post(client, f"/api/v1/orders/{order.id}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "not_cancellable")
    assert client.get("/api/v1/wallet").json() == {"currency": "CNY", "available": 100_000, "held": 0}
    assert Deal.objects.get(id=deal.id).sold == 0


def test_an_order_of_a_tipped_deal_cannot_be_cancelled(api_as, make_live_deal, shopper, fund):
    deal = make_live_deal(tipping_point=1)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    refused = _post(api_as(shopper), f"/api/v1/orders/{order.id}/cancel")
    assert refused.status_code == 409  # as a refused refund: the order is past it
    assert refused.json() == {
        "error": "This order is captured and can no longer be cancelled",
        "code": "not_cancellable",
    }
    assert json.loads(api_as(shopper).get(f"/api/v1/orders/{order.id}").content)["state"] == "captured"


def test_the_openapi_document_has_my_orders_and_the_cancel(api_as, shopper):
    spec = api_as(shopper).get("/api/v1/openapi.json").json()
    assert "get" in spec["paths"]["/api/v1/orders"]
    cancel = spec["paths"]["/api/v1/orders/{order_id}/cancel"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in cancel["parameters"])
    starts = spec["components"]["schemas"]["DealIn"]["properties"]["starts_at"]
    assert "site's local time" in starts["description"]


def test_my_orders_page_as_the_vouchers_do_with_the_link_header(api_as, make_live_deal, shopper, fund):
    import re

    deal = make_live_deal(deal_price=100, max_quantity=20, per_user_limit=20, tipping_point=10)
    fund(shopper)
    placed = [order_place(deal_id=deal.id, buyer=shopper, quantity=1).id for _ in range(5)][::-1]
    client = api_as(shopper)
    url, pages = "/api/v1/orders?limit=2", []
    while True:
        response = client.get(url)
        page = [order["id"] for order in response.json()]
        if not page:
            break
        pages.append(page)
        links = dict((rel, link) for link, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response["Link"]))
        assert links["prev"] == f"http://testserver/api/v1/orders?limit=2&min_id={page[0]}"
        url = links["next"]
        assert url == f"http://testserver/api/v1/orders?limit=2&max_id={page[-1]}"
    assert pages == [placed[0:2], placed[2:4], placed[4:5]]
    newer = client.get(f"/api/v1/orders?limit=2&min_id={placed[4]}").json()
    assert [order["id"] for order in newer] == placed[2:4]
    # `before` pages as it did; `max_id` wins when both are given.
    assert [order["id"] for order in client.get(f"/api/v1/orders?before={placed[1]}").json()] == placed[2:]
    both = client.get(f"/api/v1/orders?before={placed[1]}&max_id={placed[3]}").json()
    assert [order["id"] for order in both] == placed[4:]
    names = {
        p["name"]
        for p in client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/orders"]["get"]["parameters"]
    }
    assert names == {"limit", "max_id", "since_id", "min_id", "before"}
