"""A deal's calendar as the API and the editor take it: a moment without an offset is the site's local
time, the same moment whether it is answered at once or read back, and compared with one that has an
offset without failing; a flash batch due after the deal ends is refused beside its field; a team deal
reads back the hours its teams have to fill."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from weituan.deals.models import Deal, FlashBatch

pytestmark = pytest.mark.django_db


def _create(client, **overrides):
    body = {
        "title": "单人下午茶",
        "list_price": 8800,
        "deal_price": 3900,
        "max_quantity": 4,
        "starts_at": "2030-01-01T10:00:00",
        "ends_at": "2030-01-05T10:00:00",
        **overrides,
    }
    return client.post("/api/v1/deals", data=json.dumps(body), content_type="application/json")


def test_a_moment_without_an_offset_is_the_sites_local_time_in_the_answer_and_read_back(api_as, merchant):
    seller = api_as(merchant)
    created = _create(seller)
    assert created.status_code == 201, created.content
    # Asia/Shanghai is eight hours ahead of UTC.
    assert (created.json()["starts_at"], created.json()["ends_at"]) == (
        "2030-01-01T02:00:00Z",
        "2030-01-05T02:00:00Z",
    )
    read = seller.get(f"/api/v1/deals/{created.json()['id']}").json()
    assert (read["starts_at"], read["ends_at"]) == (created.json()["starts_at"], created.json()["ends_at"])


def test_moments_with_and_without_an_offset_are_compared(api_as, merchant):
    created = _create(
        api_as(merchant),
        ends_at="2030-01-05T10:00:00+08:00",
        flash_batches=[{"release_at": "2030-01-02T12:00:00", "quantity": 4}],
    )
    assert created.status_code == 201, created.content
    batch = FlashBatch.objects.get(deal_id=created.json()["id"])
    assert batch.release_at == datetime(2030, 1, 2, 4, 0, tzinfo=UTC)


def test_the_api_refuses_a_flash_batch_due_after_the_deal_ends(api_as, merchant):
    refused = _create(
        api_as(merchant),
        flash_batches=[
            {"release_at": "2030-01-02T10:00:00+08:00", "quantity": 2},
            {"release_at": "2030-01-05T10:00:00+08:00", "quantity": 2},
        ],
    )
    assert refused.status_code == 422, refused.content
    assert (refused.json()["code"], refused.json()["problem_codes"]) == (
        "invalid_deal",
        ["flash_batch_after_end"],
    )
    assert not Deal.objects.exists()
    assert not FlashBatch.objects.exists()


def test_the_editor_says_beside_the_batches_that_one_comes_after_the_end(merchant):
    seller = Client()
    seller.force_login(merchant)
    start = timezone.localtime() + timedelta(days=1)
    form = {
        "title": "洗车",
        "currency": "CNY",
        "list_price": "100",
        "deal_price": "30",
        "tipping_point": "1",
        "max_quantity": "5",
        "per_user_limit": "1",
        "gift_limit": "0",
        "starts_at": f"{start:%Y-%m-%dT%H:%M}",
        "ends_at": f"{start + timedelta(days=1):%Y-%m-%dT%H:%M}",
        "voucher_valid_days": "30",
        "refund_policy": "window",
        "refund_window_days": "7",
        "flash_batches": f"{start + timedelta(days=2):%Y-%m-%d %H:%M}, 5",
    }
    english = seller.post("/merchant/deals/new", form, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 200
    assert "Every flash batch must go on sale before the deal ends." in english.content.decode()
    chinese = seller.post("/merchant/deals/new", form, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "每一批秒杀都须在团购结束前开售。" in chinese.content.decode()
    assert not Deal.objects.exists()


def test_a_team_deal_reads_back_the_hours_its_teams_have_to_fill(api_as, merchant):
    seller = api_as(merchant)
    created = _create(seller, team_price=2900, team_size=3, team_window_hours=6)
    assert created.status_code == 201, created.content
    read = seller.get(f"/api/v1/deals/{created.json()['id']}").json()
    assert (created.json()["team_window_hours"], read["team_window_hours"]) == (6, 6)
    solo = _create(seller).json()
    assert solo["team_window_hours"] is None
