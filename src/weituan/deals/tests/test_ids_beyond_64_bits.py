"""A number beyond any id (64 bits), in a deals path or body, names nothing: an unknown record or an
unknown upload, never the stores' integer overflow as a 500, and nothing is written."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.core.ids import MAX_ID
from weituan.deals.models import Deal, Order, Team

pytestmark = pytest.mark.django_db

HUGE = MAX_ID + 1


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/deals/{HUGE}/publish",
        f"/api/v1/deals/{HUGE}/orders",
        f"/api/v1/orders/{HUGE}/cancel",
        f"/api/v1/orders/{HUGE}/refund",
        f"/api/v1/orders/{HUGE}/solo",
        f"/api/v1/teams/{HUGE}/merge",
    ],
)
def test_a_huge_id_in_the_path_is_unknown(api_as: Any, shopper: Any, path: str) -> None:
    response = api_as(shopper).post(path, {"into": 1, "quantity": 1}, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_huge_team_to_join_or_merge_into_is_unknown(
    api_as: Any, shopper: Any, make_live_deal, fund
) -> None:
    deal = make_live_deal(team_price=5000, team_size=3)
    fund(shopper)
    client = api_as(shopper)

    joined = client.post(
        f"/api/v1/deals/{deal.id}/orders", {"quantity": 1, "team": HUGE}, content_type="application/json"
    )
    assert (joined.status_code, joined.json()["code"]) == (404, "not_found")
    started = client.post(
        f"/api/v1/deals/{deal.id}/orders", {"quantity": 1, "team": "start"}, content_type="application/json"
    ).json()
    merged = client.post(
        f"/api/v1/teams/{started['team_id']}/merge", {"into": HUGE}, content_type="application/json"
    )
    assert (merged.status_code, merged.json()["code"]) == (404, "not_found")
    assert Order.objects.count() == 1 and Team.objects.count() == 1


def test_a_huge_upload_id_for_a_deal_is_not_an_upload(api_as: Any, merchant: Any) -> None:
    now = timezone.now()
    response = api_as(merchant).post(
        "/api/v1/deals",
        {
            "title": "双人火锅套餐",
            "list_price": 20000,
            "deal_price": 9900,
            "max_quantity": 10,
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=2)).isoformat(),
            "media_ids": [HUGE],
        },
        content_type="application/json",
    )
    assert (response.status_code, response.json()["code"], response.json()["media_ids"]) == (
        422,
        "invalid_media",
        [HUGE],
    )
    assert not Deal.objects.exists()
