"""A deal's pictures are uploads checked and resized like a post's, or pictures already on this site;
anything else is refused and no deal is made."""

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from weituan.deals.models import Deal
from weituan.microblog.models import MediaAttachment

pytestmark = pytest.mark.django_db


def _png(width: int = 3000, height: int = 1500) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, format="PNG")
    return SimpleUploadedFile("deal.png", buffer.getvalue(), content_type="image/png")


def _deal(**extra: Any) -> dict[str, Any]:
    now = timezone.now()
    return {
        "title": "双人火锅套餐",
        "list_price": 20000,
        "deal_price": 9900,
        "max_quantity": 10,
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=2)).isoformat(),
        **extra,
    }


def test_the_api_takes_the_merchants_uploads_and_pictures_of_this_site(
    api_as: Any, merchant: Any, shopper: Any
) -> None:
    seller = api_as(merchant)
    uploaded = seller.post("/api/v2/media", {"file": _png()})
    assert uploaded.status_code == 200, uploaded.content
    media = uploaded.json()
    created = seller.post(
        "/api/v1/deals",
        _deal(images=["/static/web/icon.png"], media_ids=[int(media["id"])]),
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    images = created.json()["images"]
    assert images[0] == "/static/web/icon.png"
    assert images[1].startswith("/media/") and media["url"].endswith(images[1])
    assert max(Image.open(_stored(images[1])).size) == 2048  # resized as a post's picture is

    # Someone else's upload is not the merchant's to use.
    theirs = api_as(shopper).post("/api/v2/media", {"file": _png(40, 40)}).json()
    refused = seller.post(
        "/api/v1/deals", _deal(media_ids=[int(theirs["id"])]), content_type="application/json"
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_media")
    assert Deal.objects.count() == 1


def _stored(url: str) -> str:
    from django.conf import settings

    return str(settings.MEDIA_ROOT) + "/" + url.removeprefix(settings.MEDIA_URL)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "https://elsewhere.example/deal.png",
        "//elsewhere.example/deal.png",
        "ftp://127.0.0.1/deal.png",
        "/deals/7/?wt_s=CODE",  # the site's own pages: every viewer's browser would request them
        "/s/Ab3xYz9Q",
        "/\\elsewhere.example/x.png",
        "/static/../deals/1",
        "/media/deal.png?x=1",
    ],
)
def test_pictures_from_elsewhere_or_not_pictures_are_refused(api_as: Any, merchant: Any, url: str) -> None:
    refused = api_as(merchant).post("/api/v1/deals", _deal(images=[url]), content_type="application/json")
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_deal")
    assert "images must be pictures on this site" in refused.json()["error"]
    assert Deal.objects.count() == 0


def test_the_editor_uploads_the_picture_and_refuses_a_broken_one(merchant: Any) -> None:
    seller = Client()
    seller.force_login(merchant)
    form = {
        "title": "洗车",
        "currency": "CNY",
        "list_price": "100",
        "deal_price": "30",
        "tipping_point": "1",
        "max_quantity": "50",
        "per_user_limit": "1",
        "gift_limit": "0",
        "starts_at": "2030-01-01T10:00",
        "ends_at": "2030-01-05T10:00",
        "voucher_valid_days": "30",
        "refund_policy": "anytime",
        "refund_window_days": "0",
    }
    broken = SimpleUploadedFile("deal.png", b"\x89PNG not really", content_type="image/png")
    page = seller.post("/merchant/deals/new", {**form, "image": broken})
    assert page.status_code == 200 and Deal.objects.count() == 0
    assert page.context["form"].errors["image"]

    made = seller.post("/merchant/deals/new", {**form, "image": _png(800, 600)})
    assert made.status_code == 302
    (picture,) = Deal.objects.get().images
    assert picture.startswith("/media/")
    assert Image.open(_stored(picture)).size == (800, 600)


def test_the_editor_takes_several_pictures_and_an_edit_keeps_or_replaces_them(merchant: Any) -> None:
    seller = Client(HTTP_ACCEPT_LANGUAGE="en")
    seller.force_login(merchant)
    form = {
        "title": "洗车",
        "currency": "CNY",
        "list_price": "100",
        "deal_price": "30",
        "tipping_point": "1",
        "max_quantity": "50",
        "per_user_limit": "1",
        "gift_limit": "0",
        "starts_at": "2030-01-01T10:00",
        "ends_at": "2030-01-05T10:00",
        "voucher_valid_days": "30",
        "refund_policy": "anytime",
        "refund_window_days": "0",
    }
    editor = seller.get("/merchant/deals/new").content.decode()
    assert re.search(r'<input type="file" name="image"[^>]* multiple', editor)

    made = seller.post("/merchant/deals/new", {**form, "image": [_png(800, 600), _png(300, 500)]})
    assert made.status_code == 302
    deal = Deal.objects.get()
    assert [Image.open(_stored(url)).size for url in deal.images] == [(800, 600), (300, 500)]
    kept = deal.images

    # The edit page shows them; saving without choosing pictures keeps them, choosing some replaces them.
    edit = seller.get(f"/merchant/deals/{deal.id}/edit").content.decode()
    assert all(f'<img src="{url}"' in edit for url in kept)
    assert seller.post(f"/merchant/deals/{deal.id}/edit", {**form, "title": "精洗"}).status_code == 302
    assert Deal.objects.get().images == kept
    seller.post(f"/merchant/deals/{deal.id}/edit", {**form, "image": [_png(640, 640)]})
    (replaced,) = Deal.objects.get().images
    assert replaced not in kept and Image.open(_stored(replaced)).size == (640, 640)

    # More than a deal shows are refused beside the field, and none of them is stored.
    stored = MediaAttachment.objects.count()
    page = seller.post("/merchant/deals/new", {**form, "image": [_png(64, 64) for _ in range(10)]})
    assert page.status_code == 200
    assert page.context["form"].errors["image"] == ["A deal shows at most 9 pictures."]
    assert (Deal.objects.count(), MediaAttachment.objects.count()) == (1, stored)


def test_pictures_chosen_on_a_refused_editor_are_kept_for_the_next_try(merchant: Any, shopper: Any) -> None:
    """A merchant who chose pictures and got a price or a date wrong fixes that and saves: the pictures
    are not lost with the refusal (a browser never refills a file field)."""
    seller = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    seller.force_login(merchant)
    form = {
        "title": "蟹黄汤包四人套餐",
        "currency": "CNY",
        "list_price": "128",
        "deal_price": "68",
        "tipping_point": "1",
        "max_quantity": "50",
        "per_user_limit": "1",
        "gift_limit": "0",
        "starts_at": "2030-01-05T10:00",
        "ends_at": "2030-01-01T10:00",  # before the start: the deal is refused
        "voucher_valid_days": "30",
        "refund_policy": "anytime",
        "refund_window_days": "0",
    }
    refused = seller.post("/merchant/deals/new", {**form, "image": [_png(800, 600), _png(300, 500)]})
    assert refused.status_code == 200 and Deal.objects.count() == 0
    page = refused.content.decode()
    assert "结束时间必须晚于开始时间" in page
    assert "你选的图片已保留" in page
    kept = re.findall(r'<input type="hidden" name="kept_picture" value="(\d+)">', page)
    assert len(kept) == 2

    # A form refused before the deal is looked at (a price left empty) keeps them too.
    again = seller.post("/merchant/deals/new", {**form, "deal_price": "", "kept_picture": kept}).content
    assert re.findall(r'name="kept_picture" value="(\d+)"', again.decode()) == kept

    made = seller.post("/merchant/deals/new", {**form, "ends_at": "2030-01-09T10:00", "kept_picture": kept})
    assert made.status_code == 302
    deal = Deal.objects.get()
    assert [Image.open(_stored(url)).size for url in deal.images] == [(800, 600), (300, 500)]

    # Someone else's upload sent as "kept" is not taken.
    theirs = MediaAttachment.objects.create(id=1, owner=shopper, file="x.png", width=1, height=1)
    other = seller.post(
        "/merchant/deals/new", {**form, "ends_at": "2030-01-09T10:00", "kept_picture": [theirs.id]}
    )
    assert other.status_code == 302
    assert Deal.objects.exclude(id=deal.id).get().images == []
