"""Mastodon.py, a real Mastodon client from PyPI, posting, reposting, commenting and liking over HTTP."""

import io

import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError, MastodonNotFoundError
from PIL import Image

from weituan.accounts.tokens import access_token_issue


def client_for(live_server, user):
    raw, _ = access_token_issue(user=user)
    return Mastodon(
        access_token=raw, api_base_url=live_server.url, version_check_mode="none", ratelimit_method="throw"
    )


@pytest.mark.django_db(transaction=True)
def test_a_client_walks_posts_reposts_comments_likes_and_notifications(
    live_server, shopper, merchant, outsider
):
    shop = client_for(live_server, merchant)
    alice = client_for(live_server, shopper)
    charlie = client_for(live_server, outsider)

    picture = io.BytesIO()
    Image.new("RGB", (40, 30), (250, 200, 0)).save(picture, "PNG")
    media = shop.media_post(picture.getvalue(), mime_type="image/png", description="套餐")
    assert media.url.startswith(live_server.url)
    deal = shop.status_post("#团购# 火锅双人套餐 99 元", media_ids=[media], idempotency_key="deal-1")
    assert (
        shop.status_post("#团购# 火锅双人套餐 99 元", media_ids=[media], idempotency_key="deal-1").id
        == deal.id
    )
    assert deal.media_attachments[0].id == media.id
    assert deal.tags[0].name == "团购"

    quote = alice.status_post("冲！", quoted_status_id=deal)
    assert quote.quote.quoted_status.id == deal.id
    hop = charlie.status_post("同去", quoted_status_id=quote)
    assert hop.weituan["depth"] == 2
    assert "同去//" in hop.content
    boost = charlie.status_reblog(deal)
    assert boost.reblog.id == deal.id

    alice.status_favourite(deal)
    reply = alice.status_post("几点营业？", in_reply_to_id=deal)
    assert reply.in_reply_to_id == deal.id

    seen = shop.status(deal)
    assert (seen.reblogs_count, seen.favourites_count, seen.replies_count) == (3, 1, 1)
    assert [status.id for status in shop.status_context(deal).descendants] == [reply.id]
    assert {account.acct for account in shop.status_reblogged_by(deal)} == {"alice", "charlie"}
    assert [account.acct for account in shop.status_favourited_by(deal)] == ["alice"]

    types = [note.type for note in shop.notifications()]
    # Charlie's quote of Alice's quote shows the deal too, so the shop hears of both quotes.
    assert types == ["mention", "favourite", "reblog", "quote", "quote"]
    assert shop.notifications_unread_count().count == 5
    assert [note.type for note in shop.notifications(types=["quote"])] == ["quote", "quote"]

    charlie.status_unreblog(deal)
    assert shop.status(deal).reblogs_count == 2
    alice.status_delete(reply)
    with pytest.raises(MastodonNotFoundError):
        alice.status(reply)
    with pytest.raises(MastodonAPIError):
        alice.status_post("   ")
