"""Pinned posts (置顶) in the browser pages: the toggle on one's own card, the profile showing its pinned
posts first (once), and refusals in the page's words."""

import pytest

from weituan.microblog.models import Pin
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.pins import PINS_MAX, pin_add
from weituan.microblog.services.posts import post_create

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_an_author_pins_from_the_card_and_the_profile_shows_it_first_once(client, shopper, merchant):
    older = post_create(author=merchant, text="老店开张")
    newer = post_create(author=merchant, text="今日上新")
    client.force_login(merchant)
    pinned = client.post(f"/p/{older.id}/pin", **HTMX)
    assert pinned.status_code == 200
    body = pinned.content.decode()
    assert f'hx-post="/p/{older.id}/unpin"' in body and "已置顶到你的主页。" in body
    assert Pin.objects.filter(user=merchant, post=older).exists()

    client.force_login(shopper)  # a reader sees the pin first, labelled, and not a second time
    page = client.get(f"/@{merchant.username}").content.decode()
    assert page.count(f'id="post-{older.id}"') == 1
    assert page.index(f'id="post-{older.id}"') < page.index(f'id="post-{newer.id}"')
    assert '<span class="pinned-label">置顶</span>' in page
    assert "/unpin" not in page and f'/p/{newer.id}/pin"' not in page  # only the author pins

    client.force_login(merchant)
    client.post(f"/p/{older.id}/unpin", **HTMX)
    page = client.get(f"/@{merchant.username}").content.decode()
    assert page.index(f'id="post-{newer.id}"') < page.index(f'id="post-{older.id}"')
    assert "pinned-label" not in page


@pytest.mark.django_db
def test_a_refused_pin_says_why_and_a_comment_offers_none(client, shopper, merchant):
    offer = post_create(author=merchant, text="限时团购")
    comment = comment_create(author=merchant, post_id=offer.id, text="补充说明")
    for n in range(PINS_MAX):
        pin_add(user=merchant, post_id=post_create(author=merchant, text=f"公告 {n}").id)
    client.force_login(merchant)
    refused = client.post(f"/p/{offer.id}/pin", **HTMX)
    assert refused.status_code == 422
    assert f"最多置顶 {PINS_MAX} 条：请先取消一条。" in refused.content.decode()
    assert not Pin.objects.filter(post=offer).exists()
    page = client.get(f"/p/{offer.id}").content.decode()
    assert f'/p/{comment.id}/pin"' not in page
    client.force_login(shopper)
    assert client.post(f"/p/{offer.id}/pin", **HTMX).status_code == 422
