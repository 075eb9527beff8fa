"""The post page's own actions: comments re-draw the list and the counts, and a post deleted on its
page leaves it."""

import re

import pytest

from weituan.microblog.models import Post, PostKind
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import block_create

HTMX = {"HTTP_HX_REQUEST": "true"}


def _from_page(path: str) -> dict[str, str]:
    """The headers htmx sends from the page at `path`."""
    return {**HTMX, "HTTP_HX_CURRENT_URL": f"http://testserver{path}"}


@pytest.fixture
def offer(merchant):
    return post_create(author=merchant, text="新品上市 #团购#")


@pytest.mark.django_db
def test_a_comment_from_the_post_page_redraws_the_list_and_both_counts(client, shopper, offer):
    comment_create(author=shopper, post_id=offer.id, text="第一条")
    client.force_login(shopper)
    response = client.post(
        f"/p/{offer.id}/comment", {"text": "包邮吗", "render": "comments"}, **_from_page(f"/p/{offer.id}")
    )
    assert response.status_code == 200
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#comments", "innerHTML")
    body = response.content.decode()
    assert body.index("包邮吗") < body.index("第一条")
    assert "评论成功。" in body and 'id="flash" hx-swap-oob="innerHTML"' in body
    assert '<span class="muted small" id="comments-count" hx-swap-oob="true">2</span>' in body
    assert f'<article class="post" id="post-{offer.id}" data-post-id="{offer.id}" hx-swap-oob="true">' in body
    assert re.search(r'class="action-comment"[^>]*>评论 2</button>', body)


@pytest.mark.django_db
def test_the_cards_comment_box_on_the_post_page_adds_to_the_list_too(client, shopper, offer):
    """The card's own comment box (no `render` field) posts from the post page: the list below it is
    re-drawn, not just the card, so the comment shows where the reader looks for it."""
    client.force_login(shopper)
    response = client.post(f"/p/{offer.id}/comment", {"text": "卡片上的评论"}, **_from_page(f"/p/{offer.id}"))
    assert response["HX-Retarget"] == "#comments"
    body = response.content.decode()
    assert '<li class="comment"' in body and "卡片上的评论" in body
    assert 'id="comments-count" hx-swap-oob="true">1</span>' in body
    # From the home timeline the same box answers with the card alone, as before.
    elsewhere = client.post(f"/p/{offer.id}/comment", {"text": "首页评论"}, **_from_page("/"))
    assert "HX-Retarget" not in elsewhere
    assert 'id="comments-count"' not in elsewhere.content.decode()
    assert Post.objects.filter(parent=offer, kind=PostKind.COMMENT).count() == 2


@pytest.mark.django_db
def test_a_refused_comment_on_the_post_page_changes_nothing(client, outsider, merchant, offer):
    block_create(blocker=merchant, blocked_id=outsider.pk)
    client.force_login(outsider)
    response = client.post(
        f"/p/{offer.id}/comment", {"text": "hi", "render": "comments"}, **_from_page(f"/p/{offer.id}")
    )
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#flash"
    assert 'id="comments-count"' not in response.content.decode()
    offer.refresh_from_db()
    assert offer.comments_count == 0


@pytest.mark.django_db
def test_a_post_deleted_on_its_own_page_sends_the_browser_home(client, merchant, offer):
    client.force_login(merchant)
    response = client.post(f"/p/{offer.id}/delete", **_from_page(f"/p/{offer.id}"))
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/"
    assert "已删除。" in client.get("/").content.decode()
    offer.refresh_from_db()
    assert offer.deleted_at is not None


@pytest.mark.django_db
def test_a_post_deleted_from_a_timeline_is_only_taken_off_it(client, merchant, offer):
    client.force_login(merchant)
    response = client.post(f"/p/{offer.id}/delete", **_from_page(f"/@{merchant.username}"))
    assert "HX-Redirect" not in response
    assert "已删除。" in response.content.decode()


@pytest.mark.django_db
def test_a_comment_deleted_on_the_post_page_takes_the_counts_down(client, shopper, merchant, offer):
    comment_create(author=shopper, post_id=offer.id, text="留下")
    gone = comment_create(author=shopper, post_id=offer.id, text="删掉")
    client.force_login(merchant)
    response = client.post(f"/p/{gone.id}/delete", **_from_page(f"/p/{offer.id}"))
    assert "HX-Redirect" not in response
    body = response.content.decode()
    assert "已删除。" in body
    assert 'id="comments-count" hx-swap-oob="true">1</span>' in body
    assert re.search(r'class="action-comment"[^>]*>评论 1</button>', body)
    assert "<li" not in body  # nothing takes the deleted comment's place in the list
