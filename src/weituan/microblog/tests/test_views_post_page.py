"""The post page's own actions: comments re-draw the list and the counts, a post deleted on its page
leaves it, and every reply under a comment can be read."""

import re

import pytest

from weituan.microblog import views
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


def _reply_texts(body: str) -> list[str]:
    return re.findall(r'<span class="post-text"><p>(.*?)</p></span>', body)


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


@pytest.mark.django_db
def test_every_reply_under_a_comment_can_be_read(client, shopper, outsider, offer):
    top = comment_create(author=shopper, post_id=offer.id, text="有优惠吗")
    for number in range(5):
        comment_create(
            author=[outsider, shopper][number % 2],
            post_id=offer.id,
            text=f"回复{number}",
            reply_to_comment_id=top.id,
        )
    page = client.get(f"/p/{offer.id}").content.decode()
    assert _reply_texts(page) == ["回复2", "回复3", "回复4"]
    link = f'hx-get="/p/{offer.id}/comments?replies_of={top.id}"'
    assert link in page and "共 5 条回复 · 查看全部" in page

    every = client.get(f"/p/{offer.id}/comments?replies_of={top.id}", **HTMX)
    assert every.status_code == 200
    assert _reply_texts(every.content.decode()) == [f"回复{number}" for number in range(5)]
    assert "更早的回复" not in every.content.decode()


@pytest.mark.django_db
def test_long_reply_threads_load_earlier_replies_in_pages(client, shopper, offer, monkeypatch):
    monkeypatch.setattr(views, "REPLIES_PER_PAGE", 2)
    top = comment_create(author=shopper, post_id=offer.id, text="楼主")
    replies = [
        comment_create(author=shopper, post_id=offer.id, text=f"回复{n}", reply_to_comment_id=top.id)
        for n in range(5)
    ]
    newest = client.get(f"/p/{offer.id}/comments?replies_of={top.id}", **HTMX).content.decode()
    assert _reply_texts(newest) == ["回复3", "回复4"]
    earlier = f"/p/{offer.id}/comments?replies_of={top.id}&amp;max_id={replies[3].id}"
    assert f'hx-get="{earlier}"' in newest and "更早的回复" in newest
    older = client.get(earlier.replace("&amp;", "&"), **HTMX).content.decode()
    assert _reply_texts(older) == ["回复1", "回复2"]
    oldest = client.get(
        f"/p/{offer.id}/comments?replies_of={top.id}&max_id={replies[1].id}", **HTMX
    ).content.decode()
    assert _reply_texts(oldest) == ["回复0"] and "更早的回复" not in oldest


@pytest.mark.django_db
def test_replies_of_another_posts_comment_or_of_a_hidden_post_show_nothing(client, shopper, merchant, offer):
    other = post_create(author=merchant, text="另一条")
    top = comment_create(author=shopper, post_id=other.id, text="别处的评论")
    comment_create(author=merchant, post_id=other.id, text="别处的回复", reply_to_comment_id=top.id)
    foreign = client.get(f"/p/{offer.id}/comments?replies_of={top.id}", **HTMX)
    assert foreign.status_code == 200 and "别处的回复" not in foreign.content.decode()
    client.force_login(shopper)
    block_create(blocker=merchant, blocked_id=shopper.pk)
    assert client.get(f"/p/{other.id}/comments?replies_of={top.id}", **HTMX).status_code == 404


@pytest.mark.django_db
def test_a_visitor_is_asked_to_log_in_to_like_repost_or_comment(client, offer):
    """On the post's own page a visitor's Like, Repost and Comment used to lead to that same page (a tap
    that did nothing); they lead to logging in and back, and the comments say how to join in."""
    page = client.get(f"/p/{offer.id}", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    actions = page.split('<footer class="post-actions">', 1)[1].split("</footer>", 1)[0]
    back = f"/accounts/login?next=/p/{offer.id}"
    assert re.findall(r'<a href="([^"]+)"', actions) == [back, back, back]
    assert f'<a href="{back}" id="comment-login">登录后评论</a>' in page
    home = client.get("/").content.decode()
    assert f'<a href="{back}" rel="nofollow">' in home  # from the timeline too
