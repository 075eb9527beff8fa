"""A number larger than any id (beyond 64 bits) sent as an id or a cursor names nothing: it is answered
as an unknown id or an empty page, never with the stores' overflow as a 500."""

from typing import Any

import pytest

from weituan.accounts.models import User
from weituan.core.ids import MAX_ID
from weituan.microblog.models import Follow, Mute
from weituan.microblog.services.posts import post_create

pytestmark = pytest.mark.django_db

HUGE = str(MAX_ID * 10_000)


@pytest.mark.parametrize("cursor", ["max_id", "since_id", "min_id"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/timelines/home",
        "/api/v1/timelines/public",
        "/api/v1/timelines/tag/团购",
        "/api/v1/notifications",
        "/api/v2/notifications",
        "/api/v1/favourites",
        "/api/v1/blocks",
        "/api/v2/search?q=团购",
    ],
)
def test_a_cursor_beyond_any_id_pages_as_the_largest_id_would(
    api_as: Any, shopper: User, merchant: User, path: str, cursor: str
) -> None:
    post_create(author=shopper, text="今天 #团购# 开始")
    sep = "&" if "?" in path else "?"
    response = api_as(shopper).get(f"{path}{sep}{cursor}={HUGE}")
    assert response.status_code == 200
    at_largest = api_as(shopper).get(f"{path}{sep}{cursor}={MAX_ID}")
    assert response.json() == at_largest.json()


def test_older_than_a_huge_cursor_is_everything_and_newer_than_it_nothing(api_as: Any, shopper: User) -> None:
    post = post_create(author=shopper, text="只有这一条")
    client = api_as(shopper)
    older = client.get(f"/api/v1/timelines/home?max_id={HUGE}").json()
    assert [status["id"] for status in older] == [str(post.id)]
    assert client.get(f"/api/v1/accounts/{shopper.id}/statuses?since_id={HUGE}").json() == []


@pytest.mark.parametrize("action", ["follow", "block", "mute"])
def test_a_huge_account_id_is_an_unknown_account(api_as: Any, shopper: User, action: str) -> None:
    response = api_as(shopper).post(f"/api/v1/accounts/{HUGE}/{action}")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert not Follow.objects.exists() and not Mute.objects.exists()


def test_huge_ids_in_queries_and_bodies(api_as: Any, shopper: User, merchant: User) -> None:
    client = api_as(shopper)
    relations = client.get(f"/api/v1/accounts/relationships?id[]={HUGE}&id[]={merchant.id}")
    assert [row["id"] for row in relations.json()] == [str(merchant.id)]
    assert client.get(f"/api/v1/notifications?account_id={HUGE}").json() == []
    post = client.post("/api/v1/statuses", {"status": "配图", "media_ids[]": [HUGE]})
    assert (post.status_code, post.json()["code"]) == (422, "invalid_media")
    for query in (f"account_id={HUGE}", f"offset={HUGE}"):
        search = client.get(f"/api/v2/search?q=团购&type=statuses&{query}")
        assert (search.status_code, search.json()["code"]) == (422, "invalid")


def test_relationships_leave_out_accounts_that_do_not_exist_or_are_deactivated(
    api_as: Any, shopper: User, merchant: User, outsider: User
) -> None:
    outsider.is_active = False
    outsider.save(update_fields=["is_active"])
    unknown = max(User.objects.values_list("id", flat=True)) + 1000
    relations = api_as(shopper).get(
        f"/api/v1/accounts/relationships?id[]={unknown}&id[]={merchant.id}&id[]={outsider.id}"
    )
    assert relations.status_code == 200
    assert [row["id"] for row in relations.json()] == [str(merchant.id)]


def test_huge_ids_on_the_profile_and_batch_reads(api_as: Any, shopper: User, merchant: User) -> None:
    client = api_as(shopper)
    for path in ("featured_tags", "endorsements", "lists"):
        response = client.get(f"/api/v1/accounts/{HUGE}/{path}")
        assert response.status_code == 404, path
    familiar = client.get(f"/api/v1/accounts/familiar_followers?id[]={HUGE}&id[]={merchant.id}")
    assert [row["id"] for row in familiar.json()] == [str(merchant.id)]
    assert client.get(f"/api/v1/statuses?id[]={HUGE}").json() == []
    for key in (f"ungrouped-{HUGE}", f"favourite-{HUGE}-1", f"reblog-1-{HUGE}"):
        assert client.get(f"/api/v2/notifications/{key}").status_code == 404, key


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/follow_requests/{MAX_ID + 1}/authorize",
        f"/api/v1/follow_requests/{MAX_ID + 1}/reject",
        f"/api/v1/statuses/{MAX_ID + 1}/unreblog",
        f"/api/v1/statuses/{MAX_ID + 1}/favourite",
        f"/api/v1/notifications/{MAX_ID + 1}/dismiss",
        f"/api/v1/statuses/1/quotes/{MAX_ID + 1}/revoke",
    ],
)
def test_a_number_beyond_any_id_in_a_write_path_is_an_unknown_record(
    api_as: Any, shopper: User, path: str
) -> None:
    response = api_as(shopper).post(path)
    assert (response.status_code, response.json()) == (
        404,
        {"error": "Record not found", "code": "not_found"},
    )


def test_the_largest_id_is_still_an_id(api_as: Any, shopper: User) -> None:
    response = api_as(shopper).post(f"/api/v1/statuses/{MAX_ID}/unreblog")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
