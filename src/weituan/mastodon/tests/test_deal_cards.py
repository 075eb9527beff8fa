"""A deal post, and each repost of it, reaches Mastodon clients with a PreviewCard of the deal."""

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from mastodon import Mastodon
from PIL import Image

from weituan.deals.tests.conftest import live_deal
from weituan.mastodon.home_statuses import home_statuses_clear
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import repost_create
from weituan.microblog.services.relations import follow_create


@pytest.mark.django_db
def test_deal_posts_and_their_reposts_carry_the_deals_card(
    api_as: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    deal = live_deal(merchant, images=["/static/web/icon.png"])
    hop = repost_create(reposter=outsider, post_id=deal.post_id, comment="拼一个")
    api = api_as(shopper)
    for post_id in (deal.post_id, hop.id):
        status = api.get(f"/api/v1/statuses/{post_id}").json()
        card = status["card"]
        assert card["url"] == f"http://testserver/deals/{deal.id}/"
        assert (card["title"], card["type"], card["provider_name"]) == ("双人火锅套餐", "link", "Weituan")
        assert card["description"] == "¥99.00 · ¥200.00 · -50%"
        assert card["image"] == "http://testserver/static/web/icon.png"
        assert card["author_url"] == f"http://testserver/@{merchant.username}"
    # The account's timeline (many statuses at once) and a plain post.
    listed = api.get(f"/api/v1/accounts/{outsider.pk}/statuses").json()
    assert [item["card"]["title"] for item in listed] == ["双人火锅套餐"]
    plain = api.post("/api/v1/statuses", {"status": "no deal here"}).json()
    assert plain["card"] is None


@pytest.mark.django_db(transaction=True)
def test_mastodon_py_reads_the_card(live_server: Any, merchant: Any) -> None:
    deal = live_deal(merchant)
    app = Mastodon.create_app("Weituan cards", scopes=["read"], api_base_url=live_server.url)
    client = Mastodon(client_id=app[0], client_secret=app[1], api_base_url=live_server.url)
    status = client.status(deal.post_id)
    assert status.card.title == "双人火锅套餐"
    assert status.card.url == f"{live_server.url}/deals/{deal.id}/"


def _png(width: int, height: int) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, format="PNG")
    return SimpleUploadedFile("deal.png", buffer.getvalue(), content_type="image/png")


@pytest.mark.django_db
def test_the_deals_picture_reaches_clients_as_the_cards_image_not_as_an_attachment(
    api_as: Any, run_on_commit: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=shopper, followee_id=outsider.pk)
    upload = media_upload(owner=merchant, upload=_png(1200, 800))
    with run_on_commit():
        deal = live_deal(merchant, media_ids=(upload.id,))
    with run_on_commit():
        hop = repost_create(reposter=outsider, post_id=deal.post_id, comment="拼一个")
    api = api_as(shopper)
    status = api.get(f"/api/v1/statuses/{deal.post_id}").json()
    # Clients hide a status's card when it has attachments: the picture comes with the card instead.
    assert status["media_attachments"] == []
    card = status["card"]
    assert card["image"] == f"http://testserver{upload.file.url}"
    assert (card["width"], card["height"], card["image_description"]) == (1200, 800, "双人火锅套餐")
    # The home timeline renders each status once and keeps it: the first read and a kept one agree.
    home_statuses_clear()
    for _read in range(2):
        home = api.get("/api/v1/timelines/home").json()
        assert [item["id"] for item in home] == [str(hop.id), str(deal.post_id)]
        assert [item["card"] for item in home] == [card, card]
        assert [item["media_attachments"] for item in home] == [[], []]


@pytest.mark.django_db
def test_a_card_without_a_picture_has_no_size_nor_alt_text(api_as: Any, shopper: Any, merchant: Any) -> None:
    deal = live_deal(merchant)
    card = api_as(shopper).get(f"/api/v1/statuses/{deal.post_id}").json()["card"]
    assert (card["image"], card["width"], card["height"], card["image_description"]) == (None, 0, 0, "")
