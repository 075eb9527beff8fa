"""Home-timeline statuses rendered once and reused: every change still shows at once, flags stay per viewer."""

from typing import Any

import pytest
from django.test import Client

from weituan.accounts.models import User
from weituan.accounts.tokens import access_token_issue, access_token_revoke

pytestmark = pytest.mark.django_db


def _home(client: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/timelines/home")
    assert response.status_code == 200
    return list(response.json())


def test_reused_statuses_follow_likes_edits_deletes_and_profiles(
    api_as: Any, shopper: Any, outsider: Any, merchant: Any, follow: Any, post_as: Any, repost_as: Any
) -> None:
    follow(shopper, merchant)
    follow(outsider, merchant)
    shopper_client, outsider_client = api_as(shopper), api_as(outsider)
    _home(shopper_client), _home(outsider_client)  # both timelines built
    original = post_as(merchant, "今天 #双十一# 开抢")
    forward = repost_as(merchant, original)
    first = _home(shopper_client)
    assert [row["id"] for row in first] == [str(forward.id), str(original.id)]
    assert first[1]["favourited"] is False and first[1]["favourites_count"] == 0

    assert outsider_client.post(f"/api/v1/statuses/{original.id}/favourite").status_code == 200
    mine, theirs = _home(shopper_client), _home(outsider_client)
    assert (mine[1]["favourites_count"], mine[1]["favourited"]) == (1, False)
    assert (theirs[1]["favourites_count"], theirs[1]["favourited"]) == (1, True)
    # The reblog wrapper nests the original: its flags are the viewer's too.
    assert (mine[0]["reblog"]["favourited"], theirs[0]["reblog"]["favourited"]) == (False, True)
    assert theirs[0]["reblog"]["favourites_count"] == 1

    merchant_client = api_as(merchant)
    renamed = merchant_client.patch(
        "/api/v1/accounts/update_credentials", {"display_name": "旗舰店"}, content_type="application/json"
    )
    assert (renamed.status_code, renamed.json()["display_name"]) == (200, "旗舰店")
    assert {row["account"]["display_name"] for row in _home(shopper_client)} == {"旗舰店"}

    assert merchant_client.delete(f"/api/v1/statuses/{forward.id}").status_code == 200
    assert [row["id"] for row in _home(shopper_client)] == [str(original.id)]


def test_a_revoked_token_is_refused_at_once(shopper: Any) -> None:
    raw, _ = access_token_issue(user=shopper)
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    assert client.get("/api/v1/timelines/home").status_code == 200
    assert access_token_revoke(raw=raw)
    refused = client.get("/api/v1/timelines/home")
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    User.objects.filter(pk=shopper.pk).update(is_active=False)
    fresh, _ = access_token_issue(user=shopper)
    deactivated = Client(headers={"Authorization": f"Bearer {fresh}"}).get("/api/v1/timelines/home")
    assert deactivated.status_code == 401


def test_a_new_image_description_shows_on_the_next_read(
    api_as: Any, shopper: Any, merchant: Any, follow: Any, run_on_commit: Any
) -> None:
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    follow(shopper, merchant)
    shopper_client, merchant_client = api_as(shopper), api_as(merchant)
    _home(shopper_client)  # built
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(buffer, "JPEG")
    upload = SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")
    media = merchant_client.post("/api/v2/media", {"file": upload, "description": "火锅"}).json()
    with run_on_commit():
        posted = merchant_client.post("/api/v1/statuses", {"status": "晚饭", "media_ids[]": [media["id"]]})
    assert posted.status_code == 200, posted.content
    first = _home(shopper_client)
    assert [item["description"] for item in first[0]["media_attachments"]] == ["火锅"]
    assert _home(shopper_client) == first  # read again, unchanged
    described = merchant_client.put(
        f"/api/v1/media/{media['id']}",
        data="description=麻辣",
        content_type="application/x-www-form-urlencoded",
    )
    assert described.status_code == 200
    assert [item["description"] for item in _home(shopper_client)[0]["media_attachments"]] == ["麻辣"]


def test_new_profile_fields_show_in_kept_statuses_on_the_next_read(
    api_as: Any, shopper: Any, merchant: Any, follow: Any, post_as: Any
) -> None:
    follow(shopper, merchant)
    reader, shop = api_as(shopper), api_as(merchant)
    _home(reader)  # built
    post_as(merchant, "周末特价")
    assert [row["account"]["fields"] for row in _home(reader)] == [[]]  # rendered and kept
    changed = shop.patch(
        "/api/v1/accounts/update_credentials",
        {"fields_attributes": [{"name": "网店", "value": "<b>https://shop.example</b>"}]},
        content_type="application/json",
    )
    assert changed.status_code == 200
    (row,) = _home(reader)
    assert row["account"]["fields"] == [
        {
            "name": "网店",
            "value": "&lt;b&gt;"
            '<a href="https://shop.example" rel="nofollow noopener noreferrer" target="_blank">'
            "https://shop.example</a>&lt;/b&gt;",
            "verified_at": None,
        }
    ]
    cleared = shop.patch(
        "/api/v1/accounts/update_credentials", {"fields_attributes": []}, content_type="application/json"
    )
    assert cleared.json()["fields"] == []
    assert [row["account"]["fields"] for row in _home(reader)] == [[]]
