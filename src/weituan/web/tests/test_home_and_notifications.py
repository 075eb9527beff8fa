"""The home page (signed in and not), its infinite scroll and new-post poll, notifications and the
language switch."""

import re

import pytest

from weituan.core.redis import redis_enabled
from weituan.core.testing import make_user
from weituan.microblog.models import Notification, NotificationKind
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.notifications import notification_create
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create

HTMX = {"HTTP_HX_REQUEST": "true"}


def _card_ids(body: str) -> list[int]:
    return [int(found) for found in re.findall(r'<article class="post" id="post-(\d+)"', body)]


@pytest.mark.django_db
def test_visitor_sees_public_timeline_trending_and_sign_up_links(client, merchant):
    post = post_create(author=merchant, text="欢迎光临 #开业#")
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert _card_ids(body) == [post.id]
    assert 'href="/accounts/signup"' in body and 'href="/accounts/login"' in body
    assert "热搜" in body
    assert 'id="compose"' not in body


@pytest.mark.django_db
def test_signed_in_home_has_compose_box_and_the_followed_posts(
    client, run_on_commit, shopper, merchant, outsider
):
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
    with run_on_commit():
        followed = post_create(author=merchant, text="新品")
        post_create(author=outsider, text="not followed")
    client.force_login(shopper)
    body = client.get("/").content.decode()
    assert 'id="compose"' in body
    assert 'data-max-length="280"' in body
    assert _card_ids(body) == [followed.id]
    assert f"/timeline/new?since_id={followed.id}" in body


@pytest.mark.django_db
def test_home_page_query_count_does_not_grow_with_the_page(
    client, run_on_commit, shopper, merchant, outsider, django_assert_num_queries
):
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=shopper, followee_id=outsider.pk)
    with run_on_commit():
        for number in range(3):
            post_create(author=merchant, text=f"post {number}")
    client.force_login(shopper)
    client.get("/")  # the first read builds the timeline
    # Session and user; the timeline state with the hidden and merged authors; the timeline rows (a
    # Redis call instead of a query when Redis holds timelines); then posts_hydrate's four, and a fifth
    # once a repost shows another's post (whether a block or mute hides it from the reader); the
    # reader's groups (分组) for the tabs.
    expected = 8 if redis_enabled() else 9
    with django_assert_num_queries(expected):
        small = client.get("/")
    with run_on_commit():
        original = post_create(author=outsider, text="原创")
        for number in range(12):
            post_create(author=merchant, text=f"more {number}")
        repost_create(reposter=merchant, post_id=original.id, comment="转")
    with django_assert_num_queries(expected + 1):
        large = client.get("/")
    assert (len(_card_ids(small.content.decode())), len(_card_ids(large.content.decode()))) == (3, 17)


@pytest.mark.django_db
def test_infinite_scroll_pages_by_max_id(client, merchant):
    posts = [post_create(author=merchant, text=f"第{number}条") for number in range(25)]
    newest_first = [post.id for post in reversed(posts)]
    first = client.get("/").content.decode()
    assert _card_ids(first) == newest_first[:20]
    assert f'hx-get="/?max_id={newest_first[19]}" hx-trigger="revealed"' in first
    second = client.get(f"/?max_id={newest_first[19]}", **HTMX)
    body = second.content.decode()
    assert "<html" not in body
    assert _card_ids(body) == newest_first[20:]
    assert 'hx-trigger="revealed"' not in body  # the last page has no further loader
    assert '<p class="load-more list-end">没有更多了</p>' in body  # and says the scroll has reached the end
    assert "list-end" not in first


@pytest.mark.django_db
def test_new_posts_poll_offers_then_shows_the_new_ones(client, run_on_commit, shopper, merchant):
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        old = post_create(author=merchant, text="old")
    client.force_login(shopper)
    client.get("/")
    idle = client.get(f"/timeline/new?since_id={old.id}", **HTMX).content.decode()
    assert "新微博" not in idle and f"since_id={old.id}" in idle
    with run_on_commit():
        first = post_create(author=merchant, text="new one")
        second = post_create(author=merchant, text="new two")
    offer = client.get(f"/timeline/new?since_id={old.id}", **HTMX).content.decode()
    assert "有 2 条新微博" in offer
    shown = client.get(f"/timeline/new?since_id={old.id}&show=1", **HTMX).content.decode()
    assert _card_ids(shown) == [second.id, first.id]
    assert f'hx-swap-oob="outerHTML" hx-get="/timeline/new?since_id={second.id}"' in shown


@pytest.mark.django_db
def test_notifications_page_lists_and_marks_read(client, shopper, merchant):
    offer = post_create(author=merchant, text="上新")
    follow_create(follower=shopper, followee_id=merchant.pk)
    repost_create(reposter=shopper, post_id=offer.id, comment="好物推荐")
    client.force_login(merchant)
    badge = client.get("/notifications/badge", **HTMX).content.decode()
    assert '<span class="badge" id="unread-badge"' in badge and ">2</span>" in badge
    body = client.get("/notifications").content.decode()
    assert 'data-kind="repost"' in body and "转发了你的微博" in body and "好物推荐" in body
    assert 'data-kind="follow"' in body and "关注了你" in body
    assert body.count("notification kind-") == 2 and body.count(" unread") == 2
    assert Notification.objects.filter(recipient=merchant, read_at__isnull=True).count() == 0
    assert "></span>" in client.get("/notifications/badge", **HTMX).content.decode()
    # The second visit shows them as read.
    assert " unread" not in client.get("/notifications").content.decode()


@pytest.mark.django_db
def test_a_reply_to_ones_comment_is_told_as_a_reply_not_a_comment_on_ones_post(
    client, shopper, merchant, outsider
):
    offer = post_create(author=merchant, text="上新")
    top = comment_create(author=shopper, post_id=offer.id, text="有优惠吗")
    comment_create(author=outsider, post_id=offer.id, text="满百减十", reply_to_comment_id=top.id)
    client.force_login(shopper)
    replied = client.get("/notifications").content.decode()
    assert "Charlie" in replied and "回复了你的评论" in replied and "评论了你的微博" not in replied
    # The post's author is told of the same reply as a comment on their post.
    client.force_login(merchant)
    commented = client.get("/notifications").content.decode()
    assert commented.count("评论了你的微博") == 2 and "回复了你的评论" not in commented


@pytest.mark.django_db
def test_a_new_post_notification_says_what_happened(client, shopper, merchant):
    offer = post_create(author=merchant, text="今日特价")
    notification_create(
        recipient_id=shopper.pk, actor_id=merchant.pk, kind=NotificationKind.STATUS, post_id=offer.id
    )
    client.force_login(shopper)
    body = client.get("/notifications").content.decode()
    assert re.search(r'data-kind="status">.*?发布了新微博.*?今日特价', body, re.S)


@pytest.mark.django_db
def test_notifications_need_a_login_and_show_only_ones_own(client, shopper, merchant, outsider):
    follow_create(follower=shopper, followee_id=merchant.pk)
    assert client.get("/notifications").status_code == 302
    client.force_login(outsider)
    body = client.get("/notifications").content.decode()
    assert "notification kind-" not in body
    assert Notification.objects.filter(recipient=merchant, read_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_language_switch_turns_the_pages_english_and_back(client):
    assert "首页" in client.get("/").content.decode()
    response = client.post("/i18n/setlang", {"language": "en", "next": "/trending"})
    assert (response.status_code, response["Location"]) == (302, "/trending")
    body = client.get("/trending").content.decode()
    assert '<html lang="en">' in body
    assert ">Home</a>" in body and ">Trending</a>" in body
    assert "首页" not in body
    client.post("/i18n/setlang", {"language": "zh-hans", "next": "/"})
    assert ">首页</a>" in client.get("/").content.decode()


@pytest.mark.django_db
def test_english_browsers_get_english_by_accept_language(client):
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert ">Sign up</a>" in body


@pytest.mark.django_db
def test_every_page_renders_for_a_signed_in_user_and_a_visitor(client, merchant, shopper):
    post = post_create(author=merchant, text="看看 #周末# @alice")
    make_user("bob", display_name="鲍勃")
    pages = [
        "/",
        "/trending",
        "/search?q=看看",
        "/search?q=bob&type=users",
        "/search?q=周末&type=topics",
        "/topics/周末",
        "/@meituan_shop",
        "/@meituan_shop/followers",
        "/@meituan_shop/following",
        f"/p/{post.id}",
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url
    client.force_login(shopper)
    for url in [*pages, "/notifications"]:
        assert client.get(url).status_code == 200, url


@pytest.mark.django_db
def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_a_newcomer_with_an_empty_timeline_is_shown_shops_to_follow(client, shopper, merchant):
    client.force_login(shopper)
    body = client.get("/").content.decode()
    suggested = body[body.index('id="suggested-shops"') :]
    assert "美团小店" in suggested and 'href="/@meituan_shop"' in suggested
    # A merchant is not suggested to themselves (and here there is no other shop).
    client.force_login(merchant)
    assert 'id="suggested-shops"' not in client.get("/").content.decode()
