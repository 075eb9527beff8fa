"""Editing a status's images through PUT /api/v1/statuses/:id: images taken off, put on and reordered,
their descriptions and focal points changed, each version keeping the images it had; refusals change
nothing."""

import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.microblog.models import MediaAttachment, Post, PostEdit
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create

pytestmark = pytest.mark.django_db


def _jpeg(width: int = 64, height: int = 48) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(buffer, "JPEG")
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


def _upload(client: Any, description: str = "", **extra: Any) -> str:
    response = client.post("/api/v2/media", {"file": _jpeg(), "description": description, **extra})
    assert response.status_code == 200, response.content
    return str(response.json()["id"])


def _put(client: Any, status_id: Any, body: dict[str, Any]) -> Any:
    return client.put(f"/api/v1/statuses/{status_id}", data=json.dumps(body), content_type="application/json")


def _status_with_images(client: Any, text: str, *descriptions: str) -> tuple[dict[str, Any], list[str]]:
    ids = [_upload(client, description) for description in descriptions]
    status = client.post("/api/v1/statuses", {"status": text, "media_ids[]": ids}).json()
    assert [item["id"] for item in status["media_attachments"]] == ids
    return status, ids


def _images_of(status: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(item["id"], item["description"]) for item in status["media_attachments"]]


def test_an_edit_drops_adds_reorders_and_describes_images_and_the_versions_keep_theirs(
    api_as: Any, merchant: Any
) -> None:
    client = api_as(merchant)
    status, (first, second) = _status_with_images(client, "今晚开团", "锅底", "羊肉")
    third = _upload(client, "毛肚")
    edited = _put(
        client,
        status["id"],
        {
            "status": "今晚开团，加了毛肚",
            "media_ids": [third, second],
            "media_attributes": [{"id": second, "description": "手切羊肉", "focus": "0.5,-0.25"}],
        },
    )
    assert edited.status_code == 200, edited.content
    body = edited.json()
    assert _images_of(body) == [(third, "毛肚"), (second, "手切羊肉")]
    assert body["media_attachments"][1]["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert body["edited_at"] is not None
    assert _images_of(client.get(f"/api/v1/statuses/{status['id']}").json()) == _images_of(body)

    dropped = MediaAttachment.objects.get(id=int(first))
    assert (dropped.post_id, dropped.dropped_from_id) == (None, int(status["id"]))
    history = client.get(f"/api/v1/statuses/{status['id']}/history").json()
    assert [_images_of(version) for version in history] == [
        [(first, "锅底"), (second, "羊肉")],
        [(third, "毛肚"), (second, "手切羊肉")],
    ]
    assert "加了毛肚" in history[1]["content"] and "加了毛肚" not in history[0]["content"]

    # An image taken off may come back to the same post; the versions stay as they were.
    back = _put(client, status["id"], {"status": "今晚开团，加了毛肚", "media_ids": [first, third, second]})
    assert [item["id"] for item in back.json()["media_attachments"]] == [first, third, second]
    assert MediaAttachment.objects.get(id=int(first)).dropped_from_id is None
    history = client.get(f"/api/v1/statuses/{status['id']}/history").json()
    assert [[item["id"] for item in version["media_attachments"]] for version in history] == [
        [first, second],
        [third, second],
        [first, third, second],
    ]


def test_an_image_taken_off_a_post_cannot_go_on_another(api_as: Any, merchant: Any) -> None:
    client = api_as(merchant)
    status, (first, second) = _status_with_images(client, "一", "a", "b")
    assert _put(client, status["id"], {"status": "一", "media_ids": [second]}).status_code == 200
    for attempt in (
        client.post("/api/v1/statuses", {"status": "二", "media_ids[]": [first]}),
        _put(
            client,
            client.post("/api/v1/statuses", {"status": "三"}).json()["id"],
            {"status": "三", "media_ids": [first]},
        ),
    ):
        assert (attempt.status_code, attempt.json()["code"]) == (422, "invalid_media")
    assert MediaAttachment.objects.get(id=int(first)).dropped_from_id == int(status["id"])


def test_the_same_images_and_words_change_nothing_and_keep_no_version(api_as: Any, merchant: Any) -> None:
    client = api_as(merchant)
    status, ids = _status_with_images(client, "不变", "一", "二")
    same = _put(
        client,
        status["id"],
        {"status": "不变", "media_ids": ids, "media_attributes": [{"id": ids[0], "description": "一"}]},
    )
    assert same.status_code == 200 and same.json()["edited_at"] is None
    assert not PostEdit.objects.exists()
    # Left out, the images stay as they are.
    words = _put(client, status["id"], {"status": "只改字"})
    assert [item["id"] for item in words.json()["media_attachments"]] == ids
    assert [edit.media for edit in PostEdit.objects.order_by("id")] == [
        [{"id": int(ids[0]), "description": "一"}, {"id": int(ids[1]), "description": "二"}]
    ] * 2


def test_reordering_or_describing_alone_is_a_new_version(api_as: Any, merchant: Any) -> None:
    client = api_as(merchant)
    status, (first, second) = _status_with_images(client, "顺序", "a", "b")
    reordered = client.put(
        f"/api/v1/statuses/{status['id']}",
        data=f"status=顺序&media_ids[]={second}&media_ids[]={first}",
        content_type="application/x-www-form-urlencoded",
    )
    assert [item["id"] for item in reordered.json()["media_attachments"]] == [second, first]
    described = client.put(
        f"/api/v1/statuses/{status['id']}",
        data=(
            f"status=顺序&media_ids[]={second}&media_ids[]={first}"
            f"&media_attributes[][id]={first}&media_attributes[][description]=第二张"
        ),
        content_type="application/x-www-form-urlencoded",
    )
    assert _images_of(described.json()) == [(second, "b"), (first, "第二张")]
    assert PostEdit.objects.filter(post_id=int(status["id"])).count() == 3


def test_all_images_can_go_while_words_remain_but_a_post_is_never_left_empty(
    api_as: Any, merchant: Any
) -> None:
    client = api_as(merchant)
    status, _ = _status_with_images(client, "有字", "a")
    bare = _put(client, status["id"], {"status": "有字", "media_ids": []})
    assert bare.status_code == 200 and bare.json()["media_attachments"] == []
    only_images, image_ids = _status_with_images(client, "", "b")
    emptied = _put(client, only_images["id"], {"status": "", "media_ids": []})
    assert (emptied.status_code, emptied.json()["code"]) == (422, "empty_post")
    assert [
        item["id"] for item in client.get(f"/api/v1/statuses/{only_images['id']}").json()["media_attachments"]
    ] == image_ids
    # A post of images alone may change its images and stay without words.
    other = _upload(client)
    swapped = _put(client, only_images["id"], {"status": "", "media_ids": [other]})
    assert swapped.status_code == 200 and [item["id"] for item in swapped.json()["media_attachments"]] == [
        other
    ]


def test_refused_images_change_nothing(api_as: Any, merchant: Any, shopper: Any) -> None:
    client = api_as(merchant)
    status, ids = _status_with_images(client, "原样", "a", "b")
    free = _upload(client, "空闲")
    someone_elses = _upload(api_as(shopper))
    _, (on_another,) = _status_with_images(client, "别的帖子", "c")
    too_many = [_upload(client) for _ in range(8)]
    quote = repost_create(
        reposter=merchant, post_id=post_create(author=shopper, text="原帖").id, comment="好"
    )
    refusals: list[tuple[Any, dict[str, Any], str]] = [
        (status["id"], {"media_ids": [ids[0], someone_elses]}, "invalid_media"),
        (status["id"], {"media_ids": [ids[0], on_another]}, "invalid_media"),
        (status["id"], {"media_ids": [ids[0], "999999999"]}, "invalid_media"),
        (status["id"], {"media_ids": ["abc"]}, "invalid_media"),
        (status["id"], {"media_ids": [*ids, *too_many]}, "too_many_media"),
        (
            status["id"],
            {"media_ids": [free], "media_attributes": [{"id": ids[0], "description": "x"}]},
            "invalid_media",
        ),
        (
            status["id"],
            {"media_ids": [free], "media_attributes": [{"id": free, "description": "长" * 1501}]},
            "description_too_long",
        ),
        (
            status["id"],
            {"media_ids": [free], "media_attributes": [{"id": free, "focus": "2,0"}]},
            "invalid_focus",
        ),
        (
            status["id"],
            {"media_ids": [free], "media_attributes": [{"id": free, "focus": "left"}]},
            "invalid_focus",
        ),
        (quote.id, {"media_ids": [free]}, "invalid_media"),
    ]
    for status_id, asked, code in refusals:
        refused = _put(client, status_id, {"status": "改了", **asked})
        assert (refused.status_code, refused.json()["code"]) == (422, code), asked
    assert list(
        MediaAttachment.objects.filter(post_id=int(status["id"]))
        .order_by("position")
        .values_list("id", "description")
    ) == [
        (int(ids[0]), "a"),
        (int(ids[1]), "b"),
    ]
    assert MediaAttachment.objects.get(id=int(free)).post_id is None
    assert MediaAttachment.objects.get(id=int(free)).description == "空闲"
    assert MediaAttachment.objects.filter(dropped_from__isnull=False).count() == 0
    assert Post.objects.get(id=int(status["id"])).text == "原样"
    assert not PostEdit.objects.exists()


def test_a_comment_edits_its_images_too(api_as: Any, merchant: Any, shopper: Any) -> None:
    offer = post_create(author=merchant, text="开团")
    client = api_as(shopper)
    image = _upload(client, "晒单")
    comment = client.post(
        "/api/v1/statuses", {"status": "买了", "in_reply_to_id": str(offer.id), "media_ids[]": [image]}
    )
    other = _upload(client, "再晒")
    edited = _put(client, comment.json()["id"], {"status": "买了两份", "media_ids": [other, image]})
    assert edited.status_code == 200, edited.content
    assert [item["id"] for item in edited.json()["media_attachments"]] == [other, image]


def test_an_upload_and_a_described_upload_take_a_focal_point(api_as: Any, merchant: Any) -> None:
    client = api_as(merchant)
    media = client.post("/api/v2/media", {"file": _jpeg(), "description": "图", "focus": "-0.5,0.75"}).json()
    assert media["meta"]["focus"] == {"x": -0.5, "y": 0.75}
    moved = client.put(
        f"/api/v1/media/{media['id']}", data="focus=0,0", content_type="application/x-www-form-urlencoded"
    ).json()
    assert (moved["meta"]["focus"], moved["description"]) == ({"x": 0.0, "y": 0.0}, "图")
    refused = client.post("/api/v2/media", {"file": _jpeg(), "focus": "1.5,0"})
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_focus")
    assert MediaAttachment.objects.count() == 1


def test_a_timeline_shows_a_new_focal_point_of_an_attached_image_at_once(
    api_as: Any, merchant: Any, shopper: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    client = api_as(merchant)
    status, (image,) = _status_with_images(client, "焦点", "图")
    reader = api_as(shopper)
    # A reader with a home filter is served the statuses kept by the rows they were rendered from.
    home_filter = {"title": "x", "context": ["home"], "keywords_attributes": [{"keyword": "剧透"}]}
    assert reader.post("/api/v2/filters", home_filter, content_type="application/json").status_code == 200
    assert "focus" not in reader.get("/api/v1/timelines/home").json()[0]["media_attachments"][0]["meta"]
    client.put(
        f"/api/v1/media/{image}", data="focus=0.25,0.5", content_type="application/x-www-form-urlencoded"
    )
    (shown,) = reader.get("/api/v1/timelines/home").json()
    assert shown["id"] == status["id"]
    assert shown["media_attachments"][0]["meta"]["focus"] == {"x": 0.25, "y": 0.5}
