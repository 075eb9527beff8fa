"""Every native write endpoint keeps its Idempotency-Key: a replay answers the first response and writes
nothing more; the same key for a different request, at the same endpoint or another (an order's key
included), is refused with `idempotency_mismatch`."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.core.models import IdempotencyRecord
from weituan.core.testing import make_user
from weituan.deals.models import Deal, Entry, Order, Posting, Team, Voucher, VoucherState
from weituan.deals.queries import wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.tests.test_vouchers_and_referrals import paid_order

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (Deal.objects.count(), Order.objects.count(), Posting.objects.count(), Entry.objects.count())


def _twice(call: Callable[[str], Any], key: str) -> Any:
    """Send the request with `key`, then again; the second answer is the first, and nothing changed."""
    first = call(key)
    assert first.status_code < 300, first.content
    before = (_counts(), list(Voucher.objects.values_list("id", "state")))
    again = call(key)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert (_counts(), list(Voucher.objects.values_list("id", "state"))) == before
    return first


def _mismatch(response: Any) -> None:
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "idempotency_mismatch"


DEAL = {
    "title": "双人火锅套餐",
    "list_price": 20000,
    "deal_price": 9900,
    "tipping_point": 1,
    "max_quantity": 10,
    "per_user_limit": 2,
    "starts_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
    "ends_at": (timezone.now() + timedelta(days=1)).isoformat(),
}


def test_create_and_publish_a_deal(api_as: Any, merchant: Any) -> None:
    api = api_as(merchant)

    def create(key: str, title: str = DEAL["title"]) -> Any:  # type: ignore[assignment]
        return api.post(
            "/api/v1/deals",
            {**DEAL, "title": title},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    deal_id = _twice(create, "create-1").json()["id"]
    _mismatch(create("create-1", title="别的套餐"))
    assert Deal.objects.count() == 1

    def publish(key: str, target: Any = deal_id) -> Any:
        return api.post(f"/api/v1/deals/{target}/publish", HTTP_IDEMPOTENCY_KEY=key)

    assert _twice(publish, "publish-1").json()["state"] in ("live", "scheduled")
    other = create("create-2", title="第二个套餐").json()["id"]
    _mismatch(publish("publish-1", target=other))
    assert Deal.objects.get(id=other).state == "draft"


def test_top_up_refund_and_redeem(
    api_as: Any, shopper: Any, merchant: Any, make_live_deal: Any, fund: Any
) -> None:
    buyer, seller = api_as(shopper), api_as(merchant)

    def top_up(key: str, amount: int = 5000) -> Any:
        return buyer.post(
            "/api/v1/wallet/top_up",
            {"amount": amount},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    balance = _twice(top_up, "top-up-1").json()
    _mismatch(top_up("top-up-1", amount=6000))
    assert buyer.get("/api/v1/wallet").json() == balance

    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order = paid_order(deal, shopper, fund, quantity=2)
    deal_tip_check(deal_id=deal.id)
    first_code, second_code = order.vouchers.order_by("id").values_list("code", flat=True)

    def redeem(key: str, code: str = first_code) -> Any:
        return seller.post(f"/api/v1/vouchers/{code}/redeem", HTTP_IDEMPOTENCY_KEY=key)

    _twice(redeem, "redeem-1")
    _mismatch(redeem("redeem-1", code=second_code))
    assert Voucher.objects.get(code=second_code).state == VoucherState.VALID

    def refund(key: str, order_id: int = order.id) -> Any:
        return buyer.post(f"/api/v1/orders/{order_id}/refund", HTTP_IDEMPOTENCY_KEY=key)

    refunded = _twice(refund, "refund-1").json()
    assert Voucher.objects.get(code=second_code).state == VoucherState.REFUNDED
    assert int(refunded["id"]) == order.id
    _mismatch(refund("refund-1", order_id=order.id + 1))


def _teams() -> list[tuple[Any, ...]]:
    return list(Team.objects.order_by("id").values_list("id", "state", "members", "merged_into_id"))


def _team_orders() -> list[tuple[Any, ...]]:
    return list(Order.objects.order_by("id").values_list("id", "state", "team_id", "amount"))


@pytest.fixture
def team_deal(make_live_deal: Any) -> Any:
    return make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)


def test_merge_a_team(api_as: Any, team_deal: Any, fund: Any) -> None:
    leader, other, third = (make_user(name) for name in ("lead_i", "other_i", "third_i"))
    for person in (leader, other, third):
        fund(person)
    first = order_place(deal_id=team_deal.id, buyer=leader, quantity=1, team="start")
    second = order_place(deal_id=team_deal.id, buyer=other, quantity=1, team="start")
    third_team = order_place(deal_id=team_deal.id, buyer=third, quantity=1, team="start")
    assert first.team_id and second.team_id and third_team.team_id
    api = api_as(leader)

    def merge(key: str, into: int = second.team_id) -> Any:
        return api.post(
            f"/api/v1/teams/{first.team_id}/merge",
            {"into": into},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    merged = merge("merge-1")
    assert merged.status_code == 200, merged.content
    assert (merged.json()["id"], merged.json()["members"]) == (second.team_id, 2)
    after = (_counts(), _teams(), _team_orders())
    again = merge("merge-1")
    assert (again.status_code, again.json()) == (200, merged.json())
    assert (_counts(), _teams(), _team_orders()) == after
    # The same key asking to merge into another team is refused; nothing moves.
    _mismatch(merge("merge-1", into=third_team.team_id))
    assert (_counts(), _teams(), _team_orders()) == after
    assert Team.objects.get(id=third_team.team_id).members == 1


def test_switch_to_the_solo_price(api_as: Any, team_deal: Any, fund: Any) -> None:
    leader, member = make_user("lead_s"), make_user("memb_s")
    fund(leader)
    fund(member)
    first = order_place(deal_id=team_deal.id, buyer=leader, quantity=1, team="start")
    joined = order_place(deal_id=team_deal.id, buyer=member, quantity=1, team=first.team_id)
    api = api_as(member)

    def solo(key: str, order_id: int = joined.id) -> Any:
        return api.post(f"/api/v1/orders/{order_id}/solo", HTTP_IDEMPOTENCY_KEY=key)

    switched = solo("solo-1")
    assert switched.status_code == 200, switched.content
    assert (switched.json()["team_id"], switched.json()["amount"]) == (None, 8_000)
    after = (_counts(), _teams(), _team_orders(), wallet_of(user=member))
    again = solo("solo-1")
    assert (again.status_code, again.json()) == (200, switched.json())
    assert (_counts(), _teams(), _team_orders(), wallet_of(user=member)) == after
    # The same key for another order is refused before anything is looked at.
    _mismatch(solo("solo-1", order_id=first.id))
    assert (_counts(), _teams(), _team_orders(), wallet_of(user=member)) == after


def test_one_key_is_one_request_across_orders_and_the_other_endpoints(
    api_as: Any, shopper: Any, outsider: Any, make_live_deal: Any, fund: Any
) -> None:
    deal = make_live_deal(tipping_point=5, per_user_limit=2)
    fund(shopper)
    api = api_as(shopper)

    def buy(key: str) -> Any:
        return api.post(
            f"/api/v1/deals/{deal.id}/orders",
            {"quantity": 1},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    def top_up(key: str) -> Any:
        return api.post(
            "/api/v1/wallet/top_up",
            {"amount": 500},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    # A key an order was placed with is refused by the other endpoints...
    order = buy("key-1")
    assert order.status_code == 201, order.content
    before = (_counts(), wallet_of(user=shopper), IdempotencyRecord.objects.count())
    _mismatch(top_up("key-1"))
    _mismatch(api.post(f"/api/v1/orders/{order.json()['id']}/refund", HTTP_IDEMPOTENCY_KEY="key-1"))
    assert (_counts(), wallet_of(user=shopper), IdempotencyRecord.objects.count()) == before
    assert Order.objects.get(id=order.json()["id"]).state == "authorized"
    # ...and a key another endpoint used is refused by the orders: no order, no stock taken.
    assert top_up("key-2").status_code == 200
    before = (_counts(), wallet_of(user=shopper), Deal.objects.get(id=deal.id).sold)
    _mismatch(buy("key-2"))
    assert (_counts(), wallet_of(user=shopper), Deal.objects.get(id=deal.id).sold) == before
    # The retries of each are still answered as before, and another user's keys are their own.
    assert (buy("key-1").json(), top_up("key-2").status_code) == (order.json(), 200)
    fund(outsider)
    assert (
        api_as(outsider)
        .post(
            f"/api/v1/deals/{deal.id}/orders",
            {"quantity": 1},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="key-2",
        )
        .status_code
        == 201
    )
