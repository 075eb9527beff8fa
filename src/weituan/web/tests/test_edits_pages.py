"""Editing one's own post from its card: the words change in place, the card says it was edited, and a
refused edit says why and changes nothing."""

import pytest

from weituan.microblog.models import Post, PostEdit
from weituan.microblog.services.posts import post_create, repost_create

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_the_author_edits_from_the_card_and_it_says_edited(client, shopper, merchant):
    offer = post_create(author=merchant, text="今晚八点开团")
    client.force_login(merchant)
    card = client.get(f"/p/{offer.id}").content.decode()
    assert f'hx-post="/p/{offer.id}/edit"' in card and ">今晚八点开团</textarea>" in card
    saved = client.post(f"/p/{offer.id}/edit", {"text": "今晚九点开团"}, **HTMX)
    assert saved.status_code == 200
    body = saved.content.decode()
    assert "今晚九点开团" in body and "已编辑" in body and "已保存。" in body
    assert PostEdit.objects.filter(post=offer).count() == 2

    client.force_login(shopper)  # a reader sees the new words and the mark, and no edit form
    page = client.get(f"/p/{offer.id}").content.decode()
    assert "今晚九点开团" in page and "已编辑" in page and "/edit" not in page


@pytest.mark.django_db
def test_a_refused_edit_says_why_and_changes_nothing(client, shopper, merchant):
    offer = post_create(author=merchant, text="限时团购")
    plain = repost_create(reposter=shopper, post_id=offer.id)
    client.force_login(shopper)
    others = client.post(f"/p/{offer.id}/edit", {"text": "改你的"}, **HTMX)
    assert others.status_code == 403
    nothing = client.post(f"/p/{plain.id}/edit", {"text": "加一句"}, **HTMX)
    assert nothing.status_code == 422 and "没有可编辑的内容" in nothing.content.decode()
    client.force_login(merchant)
    too_long = client.post(f"/p/{offer.id}/edit", {"text": "好" * 141}, **HTMX)
    assert too_long.status_code == 422
    assert Post.objects.get(id=offer.id).text == "限时团购"
    assert not PostEdit.objects.exists()
