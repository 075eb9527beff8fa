"""Uploading images through /api/v1/media and /api/v2/media, and posting them."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.microblog.models import MediaAttachment, Post


def jpeg(width=64, height=48):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, "JPEG")
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


def test_upload_then_post_with_images(api_as, shopper):
    client = api_as(shopper)
    v2 = client.post("/api/v2/media", {"file": jpeg(), "description": "火锅"})
    assert v2.status_code == 200, v2.content
    media = v2.json()
    assert media["type"] == "image"
    assert media["url"].startswith("http://testserver/media/")
    assert media["meta"]["original"] == {"width": 64, "height": 48, "size": "64x48", "aspect": 1.3333}
    assert media["description"] == "火锅"
    v1 = client.post("/api/v1/media", {"file": jpeg(10, 10)}).json()
    assert client.get(f"/api/v1/media/{v1['id']}").json()["id"] == v1["id"]
    described = client.put(
        f"/api/v1/media/{v1['id']}", data="description=alt", content_type="application/x-www-form-urlencoded"
    )
    assert described.json()["description"] == "alt"

    status = client.post("/api/v1/statuses", {"status": "", "media_ids[]": [media["id"], v1["id"]]}).json()
    assert [item["id"] for item in status["media_attachments"]] == [media["id"], v1["id"]]
    assert Post.objects.get(id=int(status["id"])).media.count() == 2


def test_malformed_oversized_and_missing_uploads_are_refused(api_as, shopper, settings):
    client = api_as(shopper)
    broken = client.post("/api/v2/media", {"file": SimpleUploadedFile("x.jpg", b"GIF89a broken")})
    assert (broken.status_code, broken.json()["code"]) == (422, "invalid_image")
    missing = client.post("/api/v2/media", {"description": "no file"})
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_image")
    settings.MEDIA_MAX_BYTES = 2048
    big = client.post("/api/v2/media", {"file": jpeg(1500, 1500)})
    assert (big.status_code, big.json()["code"]) == (413, "image_too_large")
    assert MediaAttachment.objects.count() == 0


def test_someone_elses_media_cannot_be_posted_or_read(api_as, shopper, outsider):
    media = api_as(outsider).post("/api/v2/media", {"file": jpeg()}).json()
    client = api_as(shopper)
    assert client.get(f"/api/v1/media/{media['id']}").status_code == 404
    response = client.post("/api/v1/statuses", {"status": "偷", "media_ids[]": [media["id"]]})
    assert (response.status_code, response.json()["code"]) == (422, "invalid_media")
    assert Post.objects.count() == 0
