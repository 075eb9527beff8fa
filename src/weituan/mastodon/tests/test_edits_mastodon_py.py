"""Editing a status through the real Mastodon.py against a live server: the words change everywhere the
status is shown, its versions are kept, its source is the author's own words, those who reposted it
are told, and what an edit cannot change is refused."""

from typing import Any

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

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
