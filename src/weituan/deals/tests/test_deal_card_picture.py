"""A deal card leads with the deal's first picture, as a small lazy thumbnail titled by the deal, wherever
the card is shown: home timeline, the post page, a repost of the deal post, and the card's own refresh."""

import io
import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from weituan.deals.facade import deal_card
from weituan.deals.tests.conftest import live_deal
from weituan.microblog.models import MediaAttachment
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import repost_create
from weituan.microblog.services.relations import follow_create

pytestmark = pytest.mark.django_db

PICTURE = re.compile(r'<a class="deal-card-picture" href="([^"]*)" tabindex="-1"><img ([^>]*)></a>')


def _png(width: int = 1200, height: int = 800) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, format="PNG")
    return SimpleUploadedFile("deal.png", buffer.getvalue(), content_type="image/png")


def _uploaded_deal(merchant: Any) -> tuple[Any, MediaAttachment]:
    first = media_upload(owner=merchant, upload=_png())
    second = media_upload(owner=merchant, upload=_png(300, 300))
    return live_deal(merchant, media_ids=(first.id, second.id)), first


def _pictures(body: str) -> list[tuple[str, str]]:
    return PICTURE.findall(body)


def _thumbnail(media: MediaAttachment) -> str:
    return f'src="{media.thumbnail.url}" alt="双人火锅套餐" width="72" height="72" loading="lazy" decoding="async"'


def test_the_card_shows_the_first_pictures_thumbnail_on_the_post_page_and_in_reposts(
    client: Client, merchant: Any, shopper: Any
) -> None:
    deal, first = _uploaded_deal(merchant)
    assert first.thumbnail.url != first.file.url  # the card shows the small version, not the 2048px one
    repost = repost_create(reposter=shopper, post_id=deal.post_id, comment="一起拼")

    on_post_page = _pictures(client.get(f"/p/{deal.post_id}").content.decode())
    # The picture leads where the title leads: through the post showing the card.
    assert on_post_page == [(f"/p/{deal.post_id}/deal", _thumbnail(first))]

    reposted = client.get(f"/p/{repost.id}").content.decode()
    assert _pictures(reposted) == [(f"/p/{repost.id}/deal", _thumbnail(first))]
    origin = reposted[reposted.index('class="post-origin"') :]
    assert origin.index(f'id="deal-card-{deal.id}"') < origin.index('class="deal-card-picture"')

    # The card refreshes itself every 15 s: the refresh keeps the picture.
    refreshed = client.get(f"/deals/{deal.id}/card?via={repost.id}").content.decode()
    assert _pictures(refreshed) == [(f"/p/{repost.id}/deal", _thumbnail(first))]


def test_the_card_shows_the_picture_in_the_home_timeline(
    client: Client, run_on_commit: Any, merchant: Any, shopper: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
    with run_on_commit():
        deal, first = _uploaded_deal(merchant)
    client.force_login(shopper)
    body = client.get("/").content.decode()
    assert f'id="deal-card-{deal.id}"' in body
    assert _pictures(body) == [(f"/p/{deal.post_id}/deal", _thumbnail(first))]


def test_a_picture_of_the_site_is_shown_as_it_is_and_a_deal_without_one_shows_none(
    client: Client, merchant: Any
) -> None:
    pictured = live_deal(merchant, images=("/static/web/icon.png",))
    plain = live_deal(merchant, title="洗车")
    assert deal_card(pictured.id).image_thumbnail == "/static/web/icon.png"  # type: ignore[union-attr]
    body = client.get(f"/p/{pictured.post_id}").content.decode()
    assert _pictures(body) == [
        (
            f"/p/{pictured.post_id}/deal",
            'src="/static/web/icon.png" alt="双人火锅套餐" width="72" height="72" loading="lazy" decoding="async"',
        )
    ]
    assert deal_card(plain.id).image_thumbnail is None  # type: ignore[union-attr]
    without = client.get(f"/p/{plain.post_id}").content.decode()
    assert f'id="deal-card-{plain.id}"' in without and "deal-card-picture" not in without


def test_a_title_in_the_alt_text_is_escaped(client: Client, merchant: Any) -> None:
    deal = live_deal(merchant, title='"><script>x</script>', images=("/static/web/icon.png",))
    body = client.get(f"/p/{deal.post_id}").content.decode()
    (picture,) = _pictures(body)
    assert 'alt="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in picture[1]
