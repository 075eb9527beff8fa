"""Profiles, follow / block / mute from the browser, follower lists, topics, search and trending."""

import re

import pytest

from weituan.core.testing import make_user
from weituan.microblog.models import Block, Follow, Mute, Notification
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import block_create, follow_create

HTMX = {"HTTP_HX_REQUEST": "true"}


def _card_ids(body: str) -> list[int]:
    return [int(found) for found in re.findall(r'<article class="post" id="post-(\d+)"', body)]


@pytest.mark.django_db
def test_profile_shows_header_badge_counts_and_posts(client, merchant, shopper):
    merchant.bio = "杭州<b>老字号</b>"
    merchant.save(update_fields=["bio"])
    post = post_create(author=merchant, text="店庆")
    follow_create(follower=shopper, followee_id=merchant.pk)
    body = client.get("/@meituan_shop").content.decode()
    assert "美团小店" in body and 'class="badge-v"' in body
    assert "杭州&lt;b&gt;老字号&lt;/b&gt;" in body
    assert '<b id="followers-count">1</b>' in body
    assert _card_ids(body) == [post.id]
    # A visitor is offered a log-in instead of a follow button.
    assert 'href="/accounts/login?next=/%40meituan_shop"' in body


@pytest.mark.django_db
def test_the_bio_on_a_profile_links_accounts_topics_and_links_as_a_post_does(client, merchant, shopper):
    merchant.bio = "店主 @alice @nobody_here 常开 #团购#\nhttps://shop.example/menu <i>x</i>"
    merchant.save(update_fields=["bio"])
    body = client.get("/@meituan_shop").content.decode()
    assert (
        '<div class="bio"><p>店主 <span class="h-card"><a href="/@alice" class="u-url mention">'
        "@<span>alice</span></a></span> @nobody_here 常开 "
        '<a href="/topics/%E5%9B%A2%E8%B4%AD" class="mention hashtag" rel="tag">#团购#</a><br />'
        '<a href="https://shop.example/menu" rel="nofollow noopener noreferrer" target="_blank">'
        "https://shop.example/menu</a> &lt;i&gt;x&lt;/i&gt;</p></div>"
    ) in body
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_unknown_profile_is_404(client):
    assert client.get("/@nobody_here").status_code == 404


@pytest.mark.django_db
def test_profile_infinite_scroll(client, merchant):
    posts = [post_create(author=merchant, text=f"p{number}") for number in range(22)]
    newest_first = [post.id for post in reversed(posts)]
    page = client.get(f"/@meituan_shop?max_id={newest_first[19]}", **HTMX).content.decode()
    assert _card_ids(page) == newest_first[20:]


@pytest.mark.django_db
def test_follow_and_unfollow_swap_the_button(client, shopper, merchant):
    client.force_login(shopper)
    body = client.get("/@meituan_shop").content.decode()
    assert 'data-following="0"' in body
    followed = client.post("/@meituan_shop/relation", {"action": "follow"}, **HTMX)
    assert followed.status_code == 200
    assert 'data-following="1"' in followed.content.decode() and "已关注。" in followed.content.decode()
    assert Follow.objects.filter(follower=shopper, followee=merchant).count() == 1
    unfollowed = client.post("/@meituan_shop/relation", {"action": "unfollow"}, **HTMX)
    assert 'data-following="0"' in unfollowed.content.decode()
    assert not Follow.objects.exists()


@pytest.mark.django_db
def test_follow_on_a_profile_updates_its_follower_count(client, shopper, merchant, outsider):
    follow_create(follower=outsider, followee_id=merchant.pk)
    client.force_login(shopper)
    followed = client.post("/@meituan_shop/relation", {"action": "follow"}, **HTMX).content.decode()
    assert '<b id="followers-count" hx-swap-oob="true">2</b>' in followed
    unfollowed = client.post("/@meituan_shop/relation", {"action": "unfollow"}, **HTMX).content.decode()
    assert '<b id="followers-count" hx-swap-oob="true">1</b>' in unfollowed
    # The compact buttons of a people list have no count beside them to update.
    listed = client.post("/@meituan_shop/relation", {"action": "follow", "compact": "1"}, **HTMX)
    assert 'id="followers-count"' not in listed.content.decode()


@pytest.mark.django_db
def test_following_oneself_is_refused_inline(client, shopper):
    client.force_login(shopper)
    response = client.post("/@alice/relation", {"action": "follow"}, **HTMX)
    assert response.status_code == 422
    assert "不能关注自己。" in response.content.decode()
    assert not Follow.objects.exists()


@pytest.mark.django_db
def test_unknown_relation_action_changes_nothing(client, shopper, merchant):
    client.force_login(shopper)
    response = client.post("/@meituan_shop/relation", {"action": "delete_account"}, **HTMX)
    assert response.status_code == 422
    assert not Follow.objects.exists() and not Block.objects.exists() and not Mute.objects.exists()


@pytest.mark.django_db
def test_block_hides_posts_and_refuses_follow(client, shopper, merchant):
    post_create(author=merchant, text="promo")
    client.force_login(shopper)
    client.post("/@meituan_shop/relation", {"action": "follow"}, **HTMX)
    blocked = client.post("/@meituan_shop/relation", {"action": "block"}, **HTMX)
    assert "取消拉黑" in blocked.content.decode()
    # The profile's posts go with the block, swapped out of band: no reload needed.
    answer = blocked.content.decode()
    assert '<div id="profile-posts" hx-swap-oob="true">' in answer and "你已拉黑此账号。" in answer
    assert _card_ids(answer) == []
    assert Block.objects.filter(blocker=shopper, blocked=merchant).count() == 1
    assert not Follow.objects.exists()
    assert _card_ids(client.get("/@meituan_shop").content.decode()) == []
    # The blocked merchant cannot follow back either.
    client.force_login(merchant)
    refused = client.post("/@alice/relation", {"action": "follow"}, **HTMX)
    assert refused.status_code == 403
    assert not Follow.objects.exists()
    assert "你无法查看此账号的微博。" in client.get("/@alice").content.decode()
    # Unblocked, the posts come back on the profile at once.
    client.force_login(shopper)
    unblocked = client.post("/@meituan_shop/relation", {"action": "unblock"}, **HTMX).content.decode()
    assert '<div id="profile-posts" hx-swap-oob="true">' in unblocked
    assert len(_card_ids(unblocked)) == 1
    # A mute leaves the profile's posts where they are (they leave the timelines, not the profile).
    muted = client.post("/@meituan_shop/relation", {"action": "mute"}, **HTMX).content.decode()
    assert "profile-posts" not in muted


@pytest.mark.django_db
def test_mute_and_unmute(client, shopper, merchant):
    client.force_login(shopper)
    muted = client.post("/@meituan_shop/relation", {"action": "mute"}, **HTMX).content.decode()
    assert "取消静音" in muted
    assert Mute.objects.filter(muter=shopper, muted=merchant).count() == 1
    client.post("/@meituan_shop/relation", {"action": "unmute"}, **HTMX)
    assert not Mute.objects.exists()


@pytest.mark.django_db
def test_relation_change_needs_a_login(client, merchant):
    response = client.post("/@meituan_shop/relation", {"action": "follow"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login")
    assert not Follow.objects.exists()


@pytest.mark.django_db
def test_follower_and_following_lists(client, shopper, merchant, outsider):
    follow_create(follower=shopper, followee_id=merchant.pk)
    follow_create(follower=outsider, followee_id=merchant.pk)
    client.force_login(shopper)
    body = client.get("/@meituan_shop/followers").content.decode()
    assert body.index("Charlie") < body.index("Alice 爱丽丝")  # newest follow first
    # The viewer gets a follow button for others, none for themselves.
    assert f'id="relation-{outsider.pk}"' in body and f'id="relation-{shopper.pk}"' not in body
    following = client.get("/@alice/following").content.decode()
    assert "美团小店" in following and "Charlie" not in following
    # The list of whom someone follows is 关注 (as on Weibo), not the button's 已关注 ("followed").
    assert "<title>关注 · Alice 爱丽丝 · 微团</title>" in following
    assert re.search(r'<a href="/@alice/following" class="current">关注</a>', following)
    english = client.get("/@alice/following", headers={"accept-language": "en"}).content.decode()
    assert re.search(r'class="current">Following</a>', english)


@pytest.mark.django_db
def test_topic_page_lists_posts_with_the_topic(client, merchant, shopper):
    tagged = post_create(author=merchant, text="参加 #双十一# 活动")
    post_create(author=shopper, text="无关")
    body = client.get("/topics/双十一").content.decode()
    assert "#双十一#" in body
    assert _card_ids(body) == [tagged.id]
    assert _card_ids(client.get("/topics/没有这个话题").content.decode()) == []


@pytest.mark.django_db
def test_search_tabs_for_posts_people_and_topics(client, merchant, shopper):
    found = post_create(author=merchant, text="今天的火锅特别好吃 #美食#")
    post_create(author=shopper, text="something else")
    posts = client.get("/search", {"q": "火锅"}).content.decode()
    assert _card_ids(posts) == [found.id]
    people = client.get("/search", {"q": "美团", "type": "users"}).content.decode()
    assert "美团小店" in people and "Alice" not in people
    topics = client.get("/search", {"q": "美食", "type": "topics"}).content.decode()
    assert 'href="/topics/%E7%BE%8E%E9%A3%9F"' in topics
    assert "请输入" not in client.get("/search").content.decode()
    assert "输入关键词开始搜索。" in client.get("/search").content.decode()


@pytest.mark.django_db
def test_search_errors_are_shown_not_raised(client):
    response = client.get("/search", {"q": "长" * 300})
    assert response.status_code == 422
    assert "搜索词太长了。" in response.content.decode()


@pytest.mark.django_db
def test_search_hides_blocked_authors(client, shopper, merchant):
    post_create(author=merchant, text="火锅优惠")
    block_create(blocker=shopper, blocked_id=merchant.pk)
    client.force_login(shopper)
    assert _card_ids(client.get("/search", {"q": "火锅"}).content.decode()) == []


@pytest.mark.django_db
def test_trending_lists_topics_many_people_talk_about(client):
    people = [make_user(f"fan{number}", date_joined="2020-01-01T00:00:00Z") for number in range(8)]
    for person in people:
        post_create(author=person, text="好消息 #新年快乐#")
    body = client.get("/trending").content.decode()
    assert 'href="/topics/%E6%96%B0%E5%B9%B4%E5%BF%AB%E4%B9%90"' in body
    assert "8 人在讨论" in body


@pytest.mark.django_db
def test_reposts_show_on_the_reposters_profile_with_the_original(client, shopper, merchant):
    offer = post_create(author=merchant, text="原价99")
    repost = repost_create(reposter=shopper, post_id=offer.id, comment="冲")
    body = client.get("/@alice").content.decode()
    assert _card_ids(body) == [repost.id]
    assert "原价99" in body[body.index('class="post-origin"') :]
