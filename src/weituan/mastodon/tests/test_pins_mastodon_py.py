"""Pinned statuses (置顶) through the real Mastodon.py against a live server: pin and unpin, the limit
and what cannot be pinned, a profile's pinned statuses as each reader may see them, and `pinned` on the
author's own statuses."""

from typing import Any

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer
from weituan.microblog.models import Pin
from weituan.microblog.services.pins import PINS_MAX

pytestmark = pytest.mark.django_db(transaction=True)


def _ids(statuses: Any) -> list[Any]:
    return [status.id for status in statuses]


def _refusal(call: Any) -> tuple[int, str]:
    """The status and the error a client is shown for a refused call."""
    with pytest.raises(MastodonAPIError) as refused:
        call()
    return refused.value.args[1], refused.value.args[3]


def test_an_author_pins_up_to_the_limit_and_readers_see_the_pins_first(
    live_server: Any, merchant: User
) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan pins")
    shop_id = shop.account_verify_credentials().id
    assert shop.instance().configuration.accounts.max_pinned_statuses == PINS_MAX
    posts = [shop.status_post(f"店铺公告 {n}") for n in range(PINS_MAX + 1)]
    for post in posts[:PINS_MAX]:
        assert shop.status_pin(post.id).pinned is True
    assert shop.status_pin(posts[0].id).pinned is True  # again: still pinned, once
    assert _refusal(lambda: shop.status_pin(posts[-1].id)) == (
        422,
        f"You can pin at most {PINS_MAX} posts: unpin one first",
    )
    assert Pin.objects.count() == PINS_MAX

    # Newest pin first, to the author and to a reader; `pinned` is the author's own flag.
    newest_first = _ids(reversed(posts[:PINS_MAX]))
    assert _ids(shop.account_statuses(shop_id, pinned=True)) == newest_first
    assert all(status.pinned for status in shop.account_statuses(shop_id, pinned=True))
    read = fan.account_statuses(shop_id, pinned=True)
    assert _ids(read) == newest_first and not any(status.pinned for status in read)
    assert fan.status(posts[0].id).pinned is False
    assert shop.status(posts[0].id).pinned is True
    assert shop.status(posts[-1].id).pinned is False
    # The author's own timeline shows the flag too (statuses kept for every reader, filled per reader).
    for _ in range(2):
        home = {status.id: status for status in shop.timeline_home()}
        assert home[posts[0].id].pinned is True and home[posts[-1].id].pinned is False

    assert shop.status_unpin(posts[0].id).pinned is False
    assert shop.status_unpin(posts[0].id).pinned is False  # again: nothing to unpin, no error
    assert shop.status_pin(posts[-1].id).pinned is True  # room again
    shop.status_delete(posts[1].id)
    assert len(shop.account_statuses(shop_id, pinned=True)) == PINS_MAX - 1


def test_what_cannot_be_pinned_is_refused_with_a_reason(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan pins")
    offer = shop.status_post("今晚开团")
    comment = fan.status_post("来两份", in_reply_to_id=offer.id)
    plain_repost = fan.status_reblog(offer.id)
    assert _refusal(lambda: fan.status_pin(offer.id)) == (422, "You can only pin your own posts")
    assert _refusal(lambda: fan.status_pin(comment.id)) == (422, "A comment cannot be pinned")
    assert _refusal(lambda: fan.status_pin(plain_repost.id)) == (
        422,
        "A repost without a comment cannot be pinned",
    )
    with pytest.raises(MastodonNotFoundError):
        fan.status_pin("12345")
    with pytest.raises(MastodonNotFoundError):
        fan.status_unpin(offer.id)  # someone else's
    hidden = shop.status_post("仅粉丝", visibility="private")
    with pytest.raises(MastodonNotFoundError):
        fan.status_pin(hidden.id)
    quote = fan.status_post("强烈推荐", quoted_status_id=offer.id)  # a repost with a comment is one's own
    assert fan.status_pin(quote.id).pinned is True
    assert Pin.objects.count() == 1


def test_a_followers_only_pin_is_shown_only_to_followers(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan pins")
    shop_id = shop.account_verify_credentials().id
    public = shop.status_post("人人可见")
    followers_only = shop.status_post("粉丝专享价", visibility="private")
    shop.status_pin(public.id)
    shop.status_pin(followers_only.id)
    assert _ids(fan.account_statuses(shop_id, pinned=True)) == [public.id]
    fan.account_follow(shop_id)
    assert _ids(fan.account_statuses(shop_id, pinned=True)) == [followers_only.id, public.id]
    shop.account_block(fan.account_verify_credentials().id)
    assert fan.account_statuses(shop_id, pinned=True) == []


@pytest.mark.django_db
def test_a_refused_pin_answers_a_stable_code(api_as: Any, shopper: User, merchant: User) -> None:
    from weituan.microblog.services.posts import post_create

    offer = post_create(author=merchant, text="今晚开团")
    own = post_create(author=shopper, text="我的第一条")
    client = api_as(shopper)
    refused = client.post(f"/api/v1/statuses/{offer.id}/pin")
    assert (refused.status_code, refused.json()["code"]) == (422, "pin_not_own")
    assert client.post(f"/api/v1/statuses/{own.id}/pin").json()["pinned"] is True
    assert client.post(f"/api/v1/statuses/{own.id}/unpin").json()["pinned"] is False
    assert not Pin.objects.exists()
