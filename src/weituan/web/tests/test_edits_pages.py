"""Editing one's own post from its card: the words and images change in place, the card says it was
edited, and a refused edit says why and changes nothing (nor stores an upload)."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.microblog.models import MediaAttachment, Post, PostEdit
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import post_create, repost_create

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_the_author_edits_from_the_card_and_it_says_edited(client, shopper, merchant):
    offer = post_create(author=merchant, text="今晚八点开团")
    client.force_login(merchant)
    card = client.get(f"/p/{offer.id}").content.decode()
    assert f'hx-post="/p/{offer.id}/edit"' in card and ">今晚八点开团</textarea>" in card
    saved = client.post(f"/p/{offer.id}/edit", {"text": "今晚九点开团"}, **HTMX)
    assert saved.status_code == 200
    body = saved.content.decode()
    assert "今晚九点开团" in body and "已编辑" in body and "已保存。" in body
    assert PostEdit.objects.filter(post=offer).count() == 2

    client.force_login(shopper)  # a reader sees the new words and the mark, and no edit form
    page = client.get(f"/p/{offer.id}").content.decode()
    assert "今晚九点开团" in page and "已编辑" in page and "/edit" not in page


@pytest.mark.django_db
def test_a_refused_edit_says_why_and_changes_nothing(client, shopper, merchant):
    offer = post_create(author=merchant, text="限时团购")
    plain = repost_create(reposter=shopper, post_id=offer.id)
    client.force_login(shopper)
    others = client.post(f"/p/{offer.id}/edit", {"text": "改你的"}, **HTMX)
    assert others.status_code == 403
    nothing = client.post(f"/p/{plain.id}/edit", {"text": "加一句"}, **HTMX)
    assert nothing.status_code == 422 and "没有可编辑的内容" in nothing.content.decode()
    client.force_login(merchant)
    too_long = client.post(f"/p/{offer.id}/edit", {"text": "好" * 141}, **HTMX)
    assert too_long.status_code == 422
    assert Post.objects.get(id=offer.id).text == "限时团购"
    assert not PostEdit.objects.exists()


def _jpeg(shade: int = 10) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (shade, 120, 200)).save(buffer, "JPEG")
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


def _images(post_id: int) -> list[int]:
    return list(
        MediaAttachment.objects.filter(post_id=post_id).order_by("position").values_list("id", flat=True)
    )


@pytest.mark.django_db
def test_the_author_takes_images_off_and_puts_new_ones_on_from_the_card(client, merchant):
    first, second = (media_upload(owner=merchant, upload=_jpeg(shade)).id for shade in (10, 90))
    offer = post_create(author=merchant, text="套餐图", media_ids=[first, second])
    client.force_login(merchant)
    card = client.get(f"/p/{offer.id}").content.decode()
    assert f'name="remove_media" value="{first}"' in card and 'name="images"' in card
    saved = client.post(
        f"/p/{offer.id}/edit",
        {
            "text": "套餐图（新）",
            "media_form": "1",
            "media": [first, second],
            "remove_media": [first],
            "images": [_jpeg(200)],
        },
        **HTMX,
    )
    assert saved.status_code == 200, saved.content
    kept, added = _images(offer.id)
    assert kept == second and added not in (first, second)
    stored = MediaAttachment.objects.get(id=added)
    assert (stored.width, stored.height, stored.thumbnail.name != "") == (80, 60, True)  # as on compose
    body = saved.content.decode()
    assert stored.thumbnail.url in body and MediaAttachment.objects.get(id=first).thumbnail.url not in body
    assert [
        [item["id"] for item in edit.media] for edit in PostEdit.objects.filter(post=offer).order_by("id")
    ] == [
        [first, second],
        [second, added],
    ]


@pytest.mark.django_db
def test_refused_images_from_the_card_store_nothing_and_change_nothing(client, merchant, shopper):
    first = media_upload(owner=merchant, upload=_jpeg()).id
    offer = post_create(author=merchant, text="九张图", media_ids=[first])
    theirs = media_upload(owner=shopper, upload=_jpeg()).id
    client.force_login(merchant)
    uploads_before = MediaAttachment.objects.count()
    too_many = client.post(
        f"/p/{offer.id}/edit",
        {
            "text": "九张图",
            "media_form": "1",
            "media": [first],
            "images": [_jpeg(shade) for shade in range(9)],
        },
        **HTMX,
    )
    not_mine = client.post(
        f"/p/{offer.id}/edit", {"text": "九张图", "media_form": "1", "media": [first, theirs]}, **HTMX
    )
    garbled = client.post(
        f"/p/{offer.id}/edit", {"text": "九张图", "media_form": "1", "media": ["x"]}, **HTMX
    )
    assert [response.status_code for response in (too_many, not_mine, garbled)] == [422, 422, 422]
    assert MediaAttachment.objects.count() == uploads_before
    assert _images(offer.id) == [first] and MediaAttachment.objects.get(id=theirs).post_id is None
    assert not PostEdit.objects.exists()


@pytest.mark.django_db
def test_a_quote_has_no_images_to_edit(client, shopper, merchant):
    quote = repost_create(
        reposter=shopper, post_id=post_create(author=merchant, text="原帖").id, comment="好"
    )
    client.force_login(shopper)
    card = client.get(f"/p/{quote.id}").content.decode()
    assert 'name="media_form"' not in card and f'hx-post="/p/{quote.id}/edit"' in card
