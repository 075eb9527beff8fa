"""Quote policies on the web pages: choosing one when posting and as the default, the refusal a reader
gets, and the quoted author removing a quote."""

import pytest

from weituan.microblog.models import Post
from weituan.microblog.services.posts import repost_create
from weituan.microblog.services.relations import follow_create

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_a_post_made_for_followers_quotes_refuses_others_in_their_language(
    client, merchant, shopper, outsider
):
    client.force_login(merchant)
    page = client.get("/").content.decode()
    assert '<select name="quote_policy"' in page and '<option value="public" selected>所有人</option>' in page
    client.post("/compose", {"text": "粉丝专享 #团购#", "quote_policy": "followers"}, **HTMX)
    post = Post.objects.get(author=merchant)
    assert post.quote_policy == "followers"

    client.force_login(outsider)
    refused = client.post(f"/p/{post.id}/repost", {"comment": "我也想要"}, **HTMX)
    assert refused.status_code == 403
    assert "作者不允许带评论转发这条微博" in refused.content.decode()
    assert client.post(f"/p/{post.id}/repost", {"comment": ""}, **HTMX).status_code == 200  # plain is fine

    follow_create(follower=shopper, followee_id=merchant.pk)
    client.force_login(shopper)
    assert client.post(f"/p/{post.id}/repost", {"comment": "冲！"}, **HTMX).status_code == 200
    assert Post.objects.get(author=shopper, parent=post).comment == "冲！"


@pytest.mark.django_db
def test_the_profile_sets_the_default_and_a_bad_choice_changes_nothing(client, merchant):
    client.force_login(merchant)
    form = client.get("/settings/profile").content.decode()
    assert 'name="quote_policy"' in form and "谁可以带评论转发我的新微博" in form
    saved = client.post("/settings/profile", {"display_name": "美团小店", "quote_policy": "nobody"})
    assert saved.status_code == 302
    merchant.refresh_from_db()
    assert merchant.quote_policy == "nobody"
    assert '<option value="nobody" selected>仅自己</option>' in client.get("/").content.decode()
    client.post("/compose", {"text": "新品"})
    assert Post.objects.get(author=merchant, text="新品").quote_policy == "nobody"
    bad = client.post("/settings/profile", {"display_name": "美团小店", "quote_policy": "friends"})
    assert bad.status_code == 400
    merchant.refresh_from_db()
    assert merchant.quote_policy == "nobody"


@pytest.mark.django_db
def test_the_quoted_author_removes_a_quote_from_its_card(client, merchant, shopper):
    client.force_login(merchant)
    client.post("/compose", {"text": "招牌小笼包"}, **HTMX)
    post = Post.objects.get(author=merchant)
    quote = repost_create(reposter=shopper, post_id=post.id, comment="皮薄汁多")
    profile = client.get(f"/@{shopper.username}").content.decode()
    assert f"/p/{post.id}/quotes/{quote.id}/revoke" in profile and "移除转发" in profile

    removed = client.post(f"/p/{post.id}/quotes/{quote.id}/revoke", **HTMX)
    assert removed.status_code == 200
    card = removed.content.decode()
    assert "原微博作者已移除这条评论转发。" in card and "皮薄汁多" in card
    assert "招牌小笼包" not in card.split("皮薄汁多", 1)[1]  # the original is no longer shown under it
    assert Post.objects.get(id=post.id).quotes_count == 0

    client.force_login(shopper)  # only the quoted author may remove it
    other = repost_create(reposter=merchant, post_id=post.id, comment="谢谢捧场")
    assert client.post(f"/p/{post.id}/quotes/{other.id}/revoke", **HTMX).status_code == 404


@pytest.mark.django_db
def test_the_author_changes_who_may_quote_a_post_on_its_page(client, merchant, shopper):
    client.force_login(merchant)
    client.post("/compose", {"text": "今日特价"})
    post = Post.objects.get(author=merchant)
    page = client.get(f"/p/{post.id}").content.decode()
    assert f'action="/p/{post.id}/quote_policy"' in page and "谁可以带评论转发这条微博" in page
    changed = client.post(f"/p/{post.id}/quote_policy", {"quote_policy": "nobody"}, follow=True)
    assert changed.status_code == 200 and "已保存。" in changed.content.decode()
    assert Post.objects.get(id=post.id).quote_policy == "nobody"
    bad = client.post(f"/p/{post.id}/quote_policy", {"quote_policy": "friends"}, follow=True)
    assert "请选择谁可以带评论转发" in bad.content.decode()
    assert Post.objects.get(id=post.id).quote_policy == "nobody"

    client.force_login(shopper)  # not theirs: no form, and the change is refused
    assert f'action="/p/{post.id}/quote_policy"' not in client.get(f"/p/{post.id}").content.decode()
    client.post(f"/p/{post.id}/quote_policy", {"quote_policy": "public"})
    assert Post.objects.get(id=post.id).quote_policy == "nobody"
