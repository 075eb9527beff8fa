"""Lists (分组) through the real Mastodon.py against a live server: make, rename and delete a list, add
and remove the accounts one follows, read the lists holding an account, the list timeline with its
paging, and the refusals a client shows."""

from typing import Any

import pytest
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer
from weituan.microblog.models import FollowList, FollowListMember

pytestmark = pytest.mark.django_db(transaction=True)


def _refusal(call: Any) -> tuple[int, str]:
    with pytest.raises(MastodonAPIError) as refused:
        call()
    return refused.value.args[1], refused.value.args[3]


def test_a_client_groups_the_accounts_it_follows_and_reads_a_group(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan lists")
    shop_id = shop.account_verify_credentials().id
    fan.account_follow(shop_id)
    shops = fan.list_create("好店")
    assert (shops.title, shops.replies_policy, shops.exclusive) == ("好店", "list", False)
    assert [row.id for row in fan.lists()] == [shops.id]

    fan.list_accounts_add(shops.id, [shop_id])
    assert [account.id for account in fan.list_accounts(shops.id)] == [shop_id]
    assert [row.id for row in fan.account_lists(shop_id)] == [shops.id]

    posts = [shop.status_post(f"今日特价 {n}") for n in range(3)]
    fan.status_post("my own words stay out of the list")
    first = fan.timeline_list(shops.id, limit=2)
    assert [status.id for status in first] == [posts[2].id, posts[1].id]
    older = fan.fetch_next(first)
    assert older is not None
    assert [status.id for status in older] == [posts[0].id]

    renamed = fan.list_update(shops.id, "常去的店", replies_policy="none")
    assert (renamed.title, renamed.replies_policy) == ("常去的店", "none")
    assert fan.list(shops.id).title == "常去的店"

    # Someone else's list does not exist for them.
    with pytest.raises(MastodonNotFoundError):
        shop.list(shops.id)
    with pytest.raises(MastodonNotFoundError):
        shop.timeline_list(shops.id)

    fan.list_accounts_delete(shops.id, [shop_id])
    assert fan.list_accounts(shops.id) == []
    assert fan.timeline_list(shops.id) == []
    fan.list_delete(shops.id)
    assert fan.lists() == []


def test_the_refusals_a_client_shows_and_nothing_written(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan list refusals")
    shop_id = shop.account_verify_credentials().id
    assert _refusal(lambda: fan.list_create("   ")) == (422, "A list needs a title")
    assert _refusal(lambda: fan.list_create("好店", exclusive=True))[0] == 422
    assert not FollowList.objects.exists()
    shops = fan.list_create("好店")
    assert _refusal(lambda: fan.list_accounts_add(shops.id, [shop_id])) == (
        422,
        "Only accounts you follow can be added to a list",
    )
    assert not FollowListMember.objects.exists()

    # Unfollowing takes the account out of the list.
    fan.account_follow(shop_id)
    fan.list_accounts_add(shops.id, [shop_id])
    fan.account_unfollow(shop_id)
    assert fan.list_accounts(shops.id) == []
    assert fan.account_lists(shop_id) == []
