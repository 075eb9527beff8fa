"""Editing a status through the real Mastodon.py against a live server: the words change everywhere the
status is shown, its versions are kept (with the images each had), its source is the author's own
words, those who reposted it are told, the images can be changed, and what an edit cannot change is
refused."""

import io
from typing import Any

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError
from PIL import Image

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer
from weituan.microblog.models import Mention, Notification, Post, PostEdit, PostTopic

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_edit_changes_the_words_keeps_the_versions_and_tells_the_reposters(
    live_server: Any, merchant: User, shopper: User
) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edits")
    fan.account_follow(shop.account_verify_credentials().id)
    status = shop.status_post("今晚八点开团 #火锅# @xiaoming")
    assert status.edited_at is None
    fan.status_reblog(status.id)
    home_before = fan.timeline_home()[0]
    assert "今晚八点" in home_before.reblog.content

    edited = shop.status_update(status.id, status="今晚九点开团 #烧烤# @alice")
    assert "今晚九点" in edited.content and edited.edited_at is not None
    assert [mention.acct for mention in edited.mentions] == ["alice"]
    assert [tag.name for tag in edited.tags] == ["烧烤"]
    # Every reader sees the new words, on the status and in a timeline (kept renderings made again).
    assert "今晚九点" in fan.status(status.id).content
    assert "今晚九点" in fan.timeline_home()[0].reblog.content
    assert [
        topic.topic.name for topic in PostTopic.objects.filter(post_id=status.id).select_related("topic")
    ] == ["烧烤"]
    assert set(Mention.objects.filter(post_id=status.id).values_list("user__username", flat=True)) == {
        "alice"
    }
    assert fan.search_v2("九点", result_type="statuses").statuses[0].id == status.id
    assert fan.search_v2("八点", result_type="statuses").statuses == []

    history = fan.status_history(status.id)
    assert ["今晚八点" in version.content for version in history] == [True, False]
    assert history[0].created_at == status.created_at
    assert shop.status_source(status.id).text == "今晚九点开团 #烧烤# @alice"
    with pytest.raises(MastodonNotFoundError):
        fan.status_source(status.id)  # the source is the author's

    told = fan.notifications(types=["update"])
    assert [(note.type, note.status.id) for note in told] == [("update", status.id)]
    assert Notification.objects.filter(recipient=shopper, kind="mention", post_id=status.id).count() == 1

    # The same words again change nothing and keep no version.
    shop.status_update(status.id, status="今晚九点开团 #烧烤# @alice")
    assert PostEdit.objects.filter(post_id=status.id).count() == 2


def test_a_quote_edits_its_comment_and_keeps_its_chain(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edits")
    offer = shop.status_post("新品上市")
    quote = fan.status_post("推荐", quoted_status_id=offer.id)
    edited = fan.status_update(quote.id, status="强烈推荐，已经买了")
    assert "强烈推荐" in edited.content
    assert fan.status_source(quote.id).text == "强烈推荐，已经买了"
    post = Post.objects.get(id=quote.id)
    assert (post.comment, post.parent_id) == ("强烈推荐，已经买了", int(offer.id))


def test_what_an_edit_cannot_change_is_refused_and_nothing_moves(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edits")
    offer = shop.status_post("限时团购")
    plain = fan.status_reblog(offer.id)
    for call, status in (
        (lambda: fan.status_update(offer.id, status="改你的"), 403),
        (lambda: fan.status_update(plain.id, status="加一句"), 422),
        (lambda: shop.status_update(offer.id, status="好" * 141), 422),
        (lambda: shop.status_update(offer.id, status="   "), 422),
        (lambda: shop.status_update(offer.id, status="换图", media_ids=["1"]), 422),
    ):
        with pytest.raises(MastodonAPIError) as refused:
            call()
        assert refused.value.args[1] == status
    assert Post.objects.get(id=offer.id).text == "限时团购"
    assert not PostEdit.objects.exists()
    shop.status_delete(offer.id)
    with pytest.raises(MastodonNotFoundError):
        shop.status_update(offer.id, status="删了还改")


def _png(shade: int) -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (shade, 120, 200)).save(buffer, "PNG")
    buffer.seek(0)
    return buffer


def test_an_edit_changes_the_images_and_every_version_keeps_its_own(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan edits")
    fan.account_follow(shop.account_verify_credentials().id)
    pot = shop.media_post(_png(10), mime_type="image/png", description="锅底")
    lamb = shop.media_post(_png(90), mime_type="image/png", description="羊肉")
    status = shop.status_post("火锅套餐", media_ids=[pot])
    assert [media.id for media in fan.timeline_home()[0].media_attachments] == [pot.id]

    edited = shop.status_update(status.id, status="火锅套餐，加羊肉", media_ids=[lamb, pot])
    assert [media.id for media in edited.media_attachments] == [lamb.id, pot.id]
    # Readers see the new images at once, on the status and in their timeline.
    assert [media.id for media in fan.status(status.id).media_attachments] == [lamb.id, pot.id]
    assert [media.id for media in fan.timeline_home()[0].media_attachments] == [lamb.id, pot.id]

    described = shop.status_update(
        status.id,
        status="火锅套餐，加羊肉",
        media_attributes=[shop.generate_media_edit_attributes(lamb, description="内蒙古羊肉")],
    )
    # Mastodon.py sends the described images alone as media_ids: the post keeps just those.
    assert [(media.id, media.description) for media in described.media_attachments] == [
        (lamb.id, "内蒙古羊肉")
    ]

    history = fan.status_history(status.id)
    assert [
        [(media.id, media.description) for media in version.media_attachments] for version in history
    ] == [
        [(pot.id, "锅底")],
        [(lamb.id, "羊肉"), (pot.id, "锅底")],
        [(lamb.id, "内蒙古羊肉")],
    ]
    with pytest.raises(MastodonAPIError) as refused:
        shop.status_post("再用锅底", media_ids=[pot])  # taken off this post, it stays this post's
    assert refused.value.args[1] == 422
