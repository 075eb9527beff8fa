"""Browser pages and actions of posts: compose, like, repost, comment, delete, and the post page."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.microblog.models import Like, MediaAttachment, Notification, Post, PostKind
from weituan.microblog.services.interactions import comment_create, like_add
from weituan.microblog.services.posts import post_create, repost_create

HTMX = {"HTTP_HX_REQUEST": "true"}


def _png(width: int = 32, height: int = 24) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, format="PNG")
    return SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def offer(merchant):
    return post_create(author=merchant, text="新品上市 #团购#")


@pytest.mark.django_db
def test_compose_with_htmx_returns_the_new_card_and_a_flash(client, shopper):
    client.force_login(shopper)
    response = client.post("/compose", {"text": "今天的晚饭 #家常菜#"}, **HTMX)
    assert response.status_code == 200
    post = Post.objects.get(author=shopper)
    assert (post.kind, post.text) == (PostKind.ORIGINAL, "今天的晚饭 #家常菜#")
    body = response.content.decode()
    assert f'id="post-{post.id}"' in body
    assert 'href="/topics/%E5%AE%B6%E5%B8%B8%E8%8F%9C"' in body
    assert 'id="flash" hx-swap-oob="innerHTML"' in body
    assert "发布成功。" in body
    # The new-post poll now starts after the post just written, so it does not offer it again.
    assert f"since_id={post.id}" in body


@pytest.mark.django_db
def test_compose_without_javascript_redirects_home(client, shopper):
    client.force_login(shopper)
    response = client.post("/compose", {"text": "hello"})
    assert (response.status_code, response["Location"]) == (302, "/")
    assert Post.objects.filter(author=shopper, text="hello").count() == 1


@pytest.mark.django_db
def test_compose_with_images_attaches_them_in_order(client, shopper):
    client.force_login(shopper)
    response = client.post("/compose", {"text": "两张图", "images": [_png(), _png(40, 40)]}, **HTMX)
    assert response.status_code == 200
    post = Post.objects.get(author=shopper)
    media = list(MediaAttachment.objects.filter(post=post).order_by("position"))
    assert [(m.position, m.width, m.height) for m in media] == [(0, 32, 24), (1, 40, 40)]
    assert 'class="post-media count-2"' in response.content.decode()


@pytest.mark.django_db
def test_compose_refuses_a_file_that_is_not_an_image(client, shopper):
    client.force_login(shopper)
    fake = SimpleUploadedFile("x.png", b"not an image at all", content_type="image/png")
    response = client.post("/compose", {"text": "看图", "images": [fake]}, **HTMX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#flash"
    assert "这个文件不是可用的图片。" in response.content.decode()
    assert not Post.objects.filter(author=shopper).exists()
    assert not MediaAttachment.objects.exists()


@pytest.mark.django_db
def test_compose_refuses_too_long_and_empty_posts_inline(client, shopper, settings):
    settings.POST_MAX_WEIGHTED_LENGTH = 20
    client.force_login(shopper)
    too_long = client.post("/compose", {"text": "中" * 11}, **HTMX)  # 22 weighted
    empty = client.post("/compose", {"text": "   "}, **HTMX)
    assert (too_long.status_code, empty.status_code) == (422, 422)
    assert "内容太长了。" in too_long.content.decode()
    assert "请先写点什么。" in empty.content.decode()
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_refused_post_without_javascript_keeps_the_draft_with_its_length(client, shopper, settings):
    settings.POST_MAX_WEIGHTED_LENGTH = 20
    client.force_login(shopper)
    response = client.post("/compose", {"text": "太长了" * 3 + " https://example.com/a/very/long/path"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "太长了太长了太长了 https://example.com/a/very/long/path</textarea>" in body
    # 9 CJK characters count 18, the space 1, the link 23.
    assert '<span class="counter over" data-counter aria-live="polite">42 / 20</span>' in body
    assert "内容太长了。" in body
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_compose_needs_a_login(client):
    response = client.post("/compose", {"text": "anonymous"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login")
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_the_compose_address_opened_in_the_browser_leads_to_the_home_page(client, shopper):
    anonymous = client.get("/compose?text=x")
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/accounts/login?next=/compose%3Ftext%3Dx")
    client.force_login(shopper)
    for method in (client.get, client.head):
        response = method("/compose?text=x")
        assert (response.status_code, response["Location"]) == (302, "/")
    # A reload after a refused post asks for the page again: it shows the home page's box.
    refused = client.post("/compose", {"text": "   "})
    assert refused.status_code == 422
    assert client.get("/compose", follow=True).redirect_chain == [("/", 302)]
    assert client.put("/compose").status_code == 405
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_like_and_unlike_toggle_the_card_in_place(client, shopper, offer):
    client.force_login(shopper)
    liked = client.post(f"/p/{offer.id}/like", **HTMX)
    assert liked.status_code == 200
    body = liked.content.decode()
    assert f'hx-post="/p/{offer.id}/unlike"' in body
    assert "已赞 1" in body
    assert Like.objects.filter(user=shopper, post=offer).count() == 1
    unliked = client.post(f"/p/{offer.id}/unlike", **HTMX)
    assert f'hx-post="/p/{offer.id}/like"' in unliked.content.decode()
    offer.refresh_from_db()
    assert (offer.likes_count, Like.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_repost_with_a_comment_notifies_the_author(client, shopper, merchant, offer):
    client.force_login(shopper)
    response = client.post(f"/p/{offer.id}/repost", {"comment": "值得一买"}, **HTMX)
    assert response.status_code == 200
    repost = Post.objects.get(kind=PostKind.REPOST)
    assert (repost.parent_id, repost.root_id, repost.comment) == (offer.id, offer.id, "值得一买")
    assert "转发 1" in response.content.decode()
    assert "已转发。" in response.content.decode()
    assert Notification.objects.filter(recipient=merchant, actor=shopper, kind="repost").count() == 1


@pytest.mark.django_db
def test_repost_of_a_deleted_post_is_refused_with_a_message(client, shopper, merchant, offer):
    client.force_login(merchant)
    client.post(f"/p/{offer.id}/delete", **HTMX)
    client.force_login(shopper)
    response = client.post(f"/p/{offer.id}/repost", {"comment": "晚了"}, **HTMX)
    assert response.status_code == 404
    assert "这条微博已被删除。" in response.content.decode()
    assert not Post.objects.filter(kind=PostKind.REPOST).exists()


@pytest.mark.django_db
def test_comment_from_a_card_and_from_the_post_page(client, shopper, merchant, offer):
    client.force_login(shopper)
    on_card = client.post(f"/p/{offer.id}/comment", {"text": "多少钱？"}, **HTMX)
    assert on_card.status_code == 200
    assert "评论 1" in on_card.content.decode()
    on_page = client.post(f"/p/{offer.id}/comment", {"text": "包邮吗", "render": "comments"}, **HTMX)
    body = on_page.content.decode()
    assert 'class="comment"' in body
    assert body.index("包邮吗") < body.index("多少钱？")  # newest first
    offer.refresh_from_db()
    assert offer.comments_count == 2
    assert Notification.objects.filter(recipient=merchant, kind="comment").count() == 2


@pytest.mark.django_db
def test_reply_under_a_comment_is_shown_beneath_it(client, shopper, merchant, offer):
    top = comment_create(author=shopper, post_id=offer.id, text="有优惠吗")
    client.force_login(merchant)
    response = client.post(
        f"/p/{offer.id}/comment", {"text": "满百减十", "reply_to": str(top.id), "render": "comments"}, **HTMX
    )
    body = response.content.decode()
    replies = body[body.index('class="comment-replies"') :]
    assert "满百减十" in replies
    assert Post.objects.get(text="满百减十").reply_to_id == top.id


@pytest.mark.django_db
def test_author_deletes_own_post(client, merchant, offer):
    client.force_login(merchant)
    response = client.post(f"/p/{offer.id}/delete", **HTMX)
    assert response.status_code == 200
    assert "已删除。" in response.content.decode()
    offer.refresh_from_db()
    assert offer.deleted_at is not None


@pytest.mark.django_db
def test_an_outsider_cannot_delete_someone_elses_post(client, outsider, offer):
    client.force_login(outsider)
    response = client.post(f"/p/{offer.id}/delete", **HTMX)
    assert response.status_code == 403
    assert "只有作者可以删除这条微博。" in response.content.decode()
    offer.refresh_from_db()
    assert offer.deleted_at is None
    # Without htmx: sent back with the same message, and still nothing deleted.
    plain = client.post(f"/p/{offer.id}/delete", HTTP_REFERER=f"http://testserver/p/{offer.id}")
    assert (plain.status_code, plain["Location"]) == (302, f"http://testserver/p/{offer.id}")
    offer.refresh_from_db()
    assert offer.deleted_at is None


@pytest.mark.django_db
def test_delete_button_shows_only_to_the_author(client, merchant, outsider, offer):
    client.force_login(outsider)
    assert f"/p/{offer.id}/delete" not in client.get(f"/p/{offer.id}").content.decode()
    client.force_login(merchant)
    assert f"/p/{offer.id}/delete" in client.get(f"/p/{offer.id}").content.decode()


@pytest.mark.django_db
def test_actions_refuse_get_and_anonymous_users(client, offer):
    assert client.get(f"/p/{offer.id}/like").status_code in (302, 405)
    response = client.post(f"/p/{offer.id}/like")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login")
    offer.refresh_from_db()
    assert offer.likes_count == 0


@pytest.mark.django_db
def test_post_page_shows_comments_reposts_and_the_repost_tree(client, shopper, outsider, merchant, offer):
    comment_create(author=outsider, post_id=offer.id, text="第一条评论")
    hop1 = repost_create(reposter=shopper, post_id=offer.id, comment="转一下")
    repost_create(reposter=outsider, post_id=hop1.id, comment="再转")
    like_add(user=shopper, post_id=offer.id)
    response = client.get(f"/p/{offer.id}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "第一条评论" in body
    assert '<b id="cascade-size">2</b>' in body
    assert '<b id="cascade-depth">2</b>' in body
    tree = body[body.index('class="repost-tree"') :]
    # The second hop is nested inside the first.
    assert tree.index("转一下") < tree.index("<ul>") < tree.index("再转")
    assert '<li data-depth="2">' in tree


@pytest.mark.django_db
def test_post_page_of_a_repost_shows_the_original_in_a_grey_box(client, shopper, offer):
    repost = repost_create(reposter=shopper, post_id=offer.id, comment="推荐")
    body = client.get(f"/p/{repost.id}").content.decode()
    origin = body[body.index('class="post-origin"') :]
    assert "新品上市" in origin
    assert body.index("推荐") < body.index('class="post-origin"')


@pytest.mark.django_db
def test_post_page_of_a_missing_or_deleted_post_is_404(client, merchant, offer):
    assert client.get("/p/123456789").status_code == 404
    client.force_login(merchant)
    client.post(f"/p/{offer.id}/delete", **HTMX)
    assert client.get(f"/p/{offer.id}").status_code == 404


@pytest.mark.django_db
def test_script_in_a_post_is_escaped_everywhere(client, shopper, merchant):
    nasty = post_create(
        author=merchant, text='<script>alert("x")</script> <img src=x onerror=alert(1)> #话题#'
    )
    repost_create(reposter=shopper, post_id=nasty.id, comment="<b>bold</b>")
    client.force_login(shopper)
    for url in ("/", f"/p/{nasty.id}", "/@meituan_shop", "/@alice"):
        body = client.get(url).content.decode()
        assert '<script>alert("x")' not in body, url
        assert "<img src=x" not in body, url
        assert "<b>bold</b>" not in body, url
    body = client.get(f"/p/{nasty.id}").content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


@pytest.mark.django_db
def test_a_post_announcing_a_deal_carries_the_live_deal_card(client, merchant, shopper):
    from datetime import timedelta

    from django.utils import timezone

    from weituan.deals.services.deals import DealInput, deal_create, deal_publish

    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title="双人火锅套餐",
            list_price=20000,
            deal_price=9900,
            max_quantity=10,
            tipping_point=3,
            per_user_limit=2,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=2),
        ),
    )
    deal_publish(deal_id=deal.id, by=merchant)
    announced = post_create(author=merchant, text="火锅团购开始了", deal_id=deal.id)
    repost = repost_create(reposter=shopper, post_id=announced.id, comment="一起拼")
    body = client.get(f"/p/{announced.id}").content.decode()
    card = body[body.index(f'id="deal-card-{deal.id}"') :]
    assert "双人火锅套餐" in card and "99.00" in card and "200.00" in card
    # A repost shows the card inside the original's grey box.
    reposted = client.get(f"/p/{repost.id}").content.decode()
    assert reposted.index('class="post-origin"') < reposted.index(f'id="deal-card-{deal.id}"')


@pytest.mark.django_db
def test_a_post_whose_deal_is_missing_shows_no_card(client, merchant):
    post = post_create(author=merchant, text="即将开团", deal_id=987654321)
    response = client.get(f"/p/{post.id}")
    assert response.status_code == 200
    assert 'class="deal-card"' not in response.content.decode()


@pytest.mark.django_db
def test_more_comments_load_by_max_id(client, shopper, offer):
    comments = [
        comment_create(author=shopper, post_id=offer.id, text=f"评论{number}") for number in range(22)
    ]
    first = client.get(f"/p/{offer.id}").content.decode()
    assert f'hx-get="/p/{offer.id}/comments?max_id={comments[2].id}"' in first
    rest = client.get(f"/p/{offer.id}/comments?max_id={comments[2].id}", **HTMX).content.decode()
    assert "评论1<" in rest and "评论0<" in rest and "评论2<" not in rest
    assert 'hx-trigger="revealed"' not in rest


@pytest.mark.django_db
def test_reposting_a_repost_card_adds_a_hop_with_the_weibo_chain(client, shopper, outsider, offer):
    first = repost_create(reposter=shopper, post_id=offer.id, comment="好价")
    client.force_login(outsider)
    response = client.post(f"/p/{first.id}/repost", {"comment": "同意"}, **HTMX)
    assert response.status_code == 200
    second = Post.objects.get(author=outsider, kind=PostKind.REPOST)
    assert (second.parent_id, second.root_id, second.depth) == (first.id, offer.id, 2)
    assert second.text == "同意//@alice: 好价"
    body = client.get(f"/p/{second.id}").content.decode()
    assert 'href="/@alice" class="u-url mention"' in body


@pytest.mark.django_db
def test_a_blocked_user_cannot_like_or_comment(client, shopper, merchant, offer):
    from weituan.microblog.services.relations import block_create

    block_create(blocker=merchant, blocked_id=shopper.pk)
    client.force_login(shopper)
    liked = client.post(f"/p/{offer.id}/like", **HTMX)
    commented = client.post(f"/p/{offer.id}/comment", {"text": "hi"}, **HTMX)
    assert (liked.status_code, commented.status_code) == (403, 403)
    assert "你无法与该账号互动。" in liked.content.decode()
    offer.refresh_from_db()
    assert (offer.likes_count, offer.comments_count, Like.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_the_pages_writes_share_the_apis_per_minute_budget(
    client, api_as, shopper, merchant, offer, settings
):
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 3
    client.force_login(shopper)
    assert api_as(shopper).post("/api/v1/statuses", {"status": "从客户端发的"}).status_code == 200
    assert client.post(f"/p/{offer.id}/like", **HTMX).status_code == 200
    assert client.post(f"/p/{offer.id}/repost", {"comment": "冲"}, **HTMX).status_code == 200
    refused = client.post(f"/p/{offer.id}/comment", {"text": "第四次"}, **HTMX)
    assert refused.status_code == 429
    assert "操作太频繁" in refused.content.decode()
    without_js = client.post("/compose", {"text": "第五次"})
    assert without_js.status_code == 429 and "第五次" in without_js.content.decode()  # the draft comes back
    assert Post.objects.filter(author=shopper).count() == 2  # the API's post and the repost
    assert Post.objects.filter(kind=PostKind.COMMENT).count() == 0
    # Following someone draws on the relations budget, as the API's follow does.
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 1
    assert client.post(f"/@{merchant.username}/relation", {"action": "follow"}, **HTMX).status_code == 200
    assert client.post(f"/@{merchant.username}/relation", {"action": "unfollow"}, **HTMX).status_code == 429


def _oob_section(body: str, section_id: str) -> str:
    start = body.index(f'<section class="card" id="{section_id}" hx-swap-oob="true">')
    return body[start : body.index("</section>", start)]


@pytest.mark.django_db
def test_reposting_on_the_post_page_redraws_its_repost_list_and_tree(client, shopper, outsider, offer):
    first = repost_create(reposter=outsider, post_id=offer.id, comment="好价")
    client.force_login(shopper)
    page = f"http://testserver/p/{offer.id}"
    response = client.post(f"/p/{offer.id}/repost", {"comment": "冲"}, HTTP_HX_CURRENT_URL=page, **HTMX)
    assert response.status_code == 200
    mine = Post.objects.get(author=shopper, kind=PostKind.REPOST)
    body = response.content.decode()
    # The card (the form's target) first, with the new count, and the flash.
    assert body.index(f'id="post-{offer.id}"') < body.index('id="reposts-section"')
    assert "转发 2" in body and "已转发。" in body
    reposts = _oob_section(body, "reposts-section")
    assert f'href="/p/{mine.id}"' in reposts and f'href="/p/{first.id}"' in reposts
    assert reposts.index(f'href="/p/{mine.id}"') < reposts.index(f'href="/p/{first.id}"')  # newest first
    tree = _oob_section(body, "repost-tree")
    assert '<b id="cascade-size">2</b>' in tree and '<b id="cascade-depth">1</b>' in tree
    assert f'href="/p/{mine.id}">冲</a>' in tree and f'href="/p/{first.id}">好价</a>' in tree
    # The page shows the same once reloaded.
    reloaded = client.get(f"/p/{offer.id}").content.decode()
    assert '<b id="cascade-size">2</b>' in reloaded


@pytest.mark.django_db
def test_reposting_from_another_page_redraws_only_the_card(client, shopper, offer):
    client.force_login(shopper)
    response = client.post(
        f"/p/{offer.id}/repost", {"comment": ""}, HTTP_HX_CURRENT_URL="http://testserver/", **HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="post-{offer.id}"' in body and "转发 1" in body
    assert 'id="reposts-section"' not in body and 'id="repost-tree"' not in body


@pytest.mark.django_db
def test_a_refused_repost_on_the_post_page_redraws_nothing(client, shopper, offer):
    client.force_login(shopper)
    too_long = "长" * 300
    response = client.post(
        f"/p/{offer.id}/repost",
        {"comment": too_long},
        HTTP_HX_CURRENT_URL=f"http://testserver/p/{offer.id}",
        **HTMX,
    )
    body = response.content.decode()
    assert 'id="reposts-section"' not in body and 'id="repost-tree"' not in body
    assert Post.objects.filter(kind=PostKind.REPOST).count() == 0
