"""Bookmarks (收藏) in the browser pages: the toggle on a post's card, the user's bookmarks page with its
infinite scroll, and a post that can no longer be seen leaving the page."""

import pytest

from weituan.microblog.models import Bookmark, Notification
from weituan.microblog.services.interactions import bookmark_add
from weituan.microblog.services.posts import post_create, post_delete
from weituan.microblog.services.relations import block_create
from weituan.web import views as web_views

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_the_card_toggles_a_bookmark_in_place_and_tells_nobody(client, shopper, merchant):
    offer = post_create(author=merchant, text="周末特价")
    client.force_login(shopper)
    kept = client.post(f"/p/{offer.id}/bookmark", **HTMX)
    assert kept.status_code == 200
    body = kept.content.decode()
    assert f'hx-post="/p/{offer.id}/unbookmark"' in body
    assert "★ 已收藏" in body and "已收藏。" in body
    assert Bookmark.objects.filter(user=shopper, post=offer).count() == 1
    assert not Notification.objects.filter(recipient=merchant).exists()
    # Without htmx the form posts and comes back to the page it was on.
    again = client.post(f"/p/{offer.id}/bookmark", {"next": "/bookmarks"})
    assert (again.status_code, again["Location"]) == (302, "/bookmarks")
    assert Bookmark.objects.count() == 1

    dropped = client.post(f"/p/{offer.id}/unbookmark", **HTMX)
    assert f'hx-post="/p/{offer.id}/bookmark"' in dropped.content.decode()
    assert "已取消收藏。" in dropped.content.decode()
    assert not Bookmark.objects.exists()


@pytest.mark.django_db
def test_the_bookmarks_page_lists_what_the_user_keeps_newest_first(client, shopper, merchant, monkeypatch):
    monkeypatch.setattr(web_views, "PAGE_SIZE", 2)
    first, second, third = (post_create(author=merchant, text=f"好物 {n}") for n in range(3))
    for post in (second, third, first):
        bookmark_add(user=shopper, post_id=post.id)
    client.force_login(shopper)
    page = client.get("/bookmarks")
    body = page.content.decode()
    assert page.status_code == 200 and "我的收藏" in body
    assert body.index(f'id="post-{first.id}"') < body.index(f'id="post-{third.id}"')
    assert f'id="post-{second.id}"' not in body
    older = Bookmark.objects.get(post=third).id
    assert f'hx-get="/bookmarks?max_id={older}"' in body
    more = client.get(f"/bookmarks?max_id={older}", **HTMX).content.decode()
    assert f'id="post-{second.id}"' in more and "<html" not in more

    # A deleted post, or one of an account that blocked the user, leaves the page.
    post_delete(actor=merchant, post_id=first.id)
    block_create(blocker=merchant, blocked_id=shopper.pk)
    empty = client.get("/bookmarks").content.decode()
    assert "还没有收藏" in empty and 'class="post"' not in empty


@pytest.mark.django_db
def test_a_visitor_is_sent_to_log_in_and_a_refused_bookmark_says_why(client, shopper, merchant):
    offer = post_create(author=merchant, text="仅粉丝可见", visibility="private")
    assert client.get("/bookmarks")["Location"].startswith("/accounts/login")
    client.force_login(shopper)
    refused = client.post(f"/p/{offer.id}/bookmark", **HTMX)
    assert refused.status_code == 404
    assert not Bookmark.objects.exists()
