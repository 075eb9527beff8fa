"""Reads a Mastodon client makes as it is used, through the real Mastodon.py against a live server: the
caller's favourites, several statuses at once, the account search of a compose box, a topic as a Tag, a
profile's familiar followers, and list parameters sent as a JSON body on a GET."""

from typing import Any

import httpx
import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError, MastodonNotFoundError

from weituan.accounts.models import User
from weituan.core.testing import make_user
from weituan.mastodon.tests.clients import PASSWORD, SCOPES, shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def _people(live_server: Any) -> tuple[Mastodon, Mastodon]:
    return shop_and_newcomer(live_server, "Weituan client reads")


def _ids(statuses: Any) -> list[Any]:
    return [status.id for status in statuses]


def test_favourites_are_the_liked_statuses_newest_like_first(
    live_server: Any, merchant: User, outsider: User
) -> None:
    shop, fan = _people(live_server)
    first, second, third = (shop.status_post(f"团购 {n}") for n in range(3))
    for status in (second, first, third):  # liked out of posting order: the like's moment counts
        fan.status_favourite(status.id)
    assert _ids(fan.favourites()) == [third.id, first.id, second.id]
    assert all(status.favourited for status in fan.favourites())

    page = fan.favourites(limit=2)
    assert _ids(page) == [third.id, first.id]
    older = fan.fetch_next(page)
    assert _ids(older) == [second.id]
    assert _ids(fan.fetch_previous(older)) == [third.id, first.id]

    shop.status_delete(first.id)
    assert _ids(fan.favourites()) == [third.id, second.id]
    fan.status_unfavourite(third.id)
    assert _ids(fan.favourites()) == [second.id]
    # Someone else's likes are their own.
    assert shop.favourites() == []


def test_favourites_leave_out_what_the_reader_may_no_longer_see(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    shop_id = shop.account_verify_credentials().id
    fan.account_follow(shop_id)
    public = shop.status_post("人人可见")
    followers_only = shop.status_post("仅粉丝", visibility="private")
    fan.status_favourite(public.id)
    fan.status_favourite(followers_only.id)
    assert _ids(fan.favourites()) == [followers_only.id, public.id]

    fan.account_unfollow(shop_id)
    assert _ids(fan.favourites()) == [public.id]
    shop.account_block(fan.account_verify_credentials().id)
    assert fan.favourites() == []


def test_several_statuses_at_once_only_those_the_reader_may_see(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    older = shop.status_post("早一点")
    newer = shop.status_post("晚一点")
    hidden = shop.status_post("仅粉丝", visibility="private")
    gone = shop.status_post("删掉了")
    shop.status_delete(gone.id)

    # In the order asked; what the reader may not see, deleted or never was is left out.
    assert _ids(fan.statuses([older.id, hidden.id, newer.id, gone.id, 1])) == [older.id, newer.id]
    assert _ids(shop.statuses([hidden.id, older.id])) == [hidden.id, older.id]
    assert fan.statuses([older.id])[0].account.acct == "meituan_shop"

    with pytest.raises(MastodonAPIError) as refused:
        fan.statuses([older.id] * 21)
    assert refused.value.args[1] == 422


def test_account_search_as_a_compose_box_asks(live_server: Any, merchant: User, outsider: User) -> None:
    shop, fan = _people(live_server)
    assert [account.acct for account in fan.account_search("meituan")] == ["meituan_shop"]
    assert [account.acct for account in fan.account_search("美团")] == ["meituan_shop"]
    assert fan.account_search("meituan", following=True) == []
    fan.account_follow(shop.account_verify_credentials().id)
    assert [account.acct for account in fan.account_search("meituan", following=True)] == ["meituan_shop"]
    assert [account.acct for account in fan.account_search("c", limit=1)] == ["charlie"]
    assert fan.account_search("c", limit=1, offset=1) == []

    shop.account_block(fan.account_verify_credentials().id)
    assert fan.account_search("meituan") == []

    # 40 unless asked, up to 80, as Mastodon.
    for n in range(45):
        make_user(f"tuan{n:02d}")
    assert len(fan.account_search("tuan")) == 40
    assert len(fan.account_search("tuan", limit=80)) == 45


def test_a_topic_read_as_a_tag(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    shop.status_post("今晚 #团购# 开抢")
    tag = fan.tag("团购")
    assert tag.name == "团购"
    assert tag.url.endswith("/topics/%E5%9B%A2%E8%B4%AD")
    assert tag.following is False
    assert int(tag.history[0].uses) == 1
    assert len(tag.history) == 7
    with pytest.raises(MastodonNotFoundError):
        fan.tag("没人用过")


def test_familiar_followers_as_a_profile_shows_them(
    live_server: Any, merchant: User, shopper: User, outsider: User
) -> None:
    shop, fan = _people(live_server)
    app = Mastodon.create_app("Weituan familiar", scopes=SCOPES, api_base_url=live_server.url)
    alice, charlie = (
        Mastodon(
            client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="none"
        )
        for _ in range(2)
    )
    alice.log_in("alice", PASSWORD, scopes=SCOPES, allow_http=True)
    charlie.log_in("charlie", PASSWORD, scopes=SCOPES, allow_http=True)
    shop_id = shop.account_verify_credentials().id
    alice_id, charlie_id = shopper.pk, outsider.pk
    for follower in (alice, charlie):
        follower.account_follow(shop_id)
    fan.account_follow(alice_id)
    fan.account_follow(charlie_id)

    # Mastodon.py sends these ids as a JSON body on the GET.
    (found,) = fan.account_familiar_followers(shop_id)
    assert str(found.id) == str(shop_id)
    assert [account.acct for account in found.accounts] == ["charlie", "alice"]
    both = fan.account_familiar_followers([shop_id, alice_id])
    assert [(str(entry.id), len(entry.accounts)) for entry in both] == [(str(shop_id), 2), (str(alice_id), 0)]

    fan.account_mute(charlie_id)
    assert [account.acct for account in fan.account_familiar_followers(shop_id)[0].accounts] == ["alice"]
    # As the query string gives them, and an unknown account left out.
    answer = httpx.get(
        f"{live_server.url}/api/v1/accounts/familiar_followers",
        params={"id[]": [str(shop_id), "99999"]},
        headers={"Authorization": f"Bearer {fan.access_token}"},
    )
    assert answer.status_code == 200
    assert [(entry["id"], len(entry["accounts"])) for entry in answer.json()] == [(str(shop_id), 1)]


def test_list_parameters_sent_as_a_json_body_on_a_get(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    shop_id = shop.account_verify_credentials().id
    fan.account_follow(shop_id)
    first = shop.status_post("第一条")
    headers = {"Authorization": f"Bearer {fan.access_token}"}
    relationships = httpx.request(
        "GET",
        f"{live_server.url}/api/v1/accounts/relationships",
        json={"id": [str(shop_id)]},
        headers=headers,
    )
    assert [(row["id"], row["following"]) for row in relationships.json()] == [(str(shop_id), True)]
    statuses = httpx.request(
        "GET", f"{live_server.url}/api/v1/statuses", json={"id": [first.id]}, headers=headers
    )
    assert [status["id"] for status in statuses.json()] == [str(first.id)]


def test_who_reblogged_lists_each_account_once(
    live_server: Any, merchant: User, shopper: User, outsider: User
) -> None:
    shop, fan = _people(live_server)
    app = Mastodon.create_app("Weituan reposters", scopes=SCOPES, api_base_url=live_server.url)
    alice = Mastodon(
        client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="none"
    )
    alice.log_in("alice", PASSWORD, scopes=SCOPES, allow_http=True)
    deal = shop.status_post("今晚 #团购#")
    alice.status_reblog(deal.id)
    fan.status_post("一起", quoted_status_id=deal.id)
    alice.status_post("冲", quoted_status_id=deal.id)  # alice again, now with a comment
    alice.status_post("再冲", quoted_status_id=deal.id)

    assert [account.acct for account in shop.status_reblogged_by(deal.id)] == ["alice", "xiaoming"]
    # Paged one at a time through the Link header, as a client scrolls it.
    headers = {"Authorization": f"Bearer {shop.access_token}"}
    url: str | None = f"{live_server.url}/api/v1/statuses/{deal.id}/reblogged_by?limit=1"
    seen = []
    while url:
        answer = httpx.get(url, headers=headers)
        if not answer.json():
            break
        seen += [account["acct"] for account in answer.json()]
        url = answer.links.get("next", {}).get("url")
    assert seen == ["alice", "xiaoming"]


def test_reblogged_is_the_plain_repost_that_unreblog_takes_back(live_server: Any, merchant: User) -> None:
    shop, fan = _people(live_server)
    deal = shop.status_post("今晚 #团购#")
    fan.status_post("一起拼", quoted_status_id=deal.id)  # a quote is a post of its own, not a boost
    assert fan.status(deal.id).reblogged is False
    assert fan.status_reblog(deal.id).reblog.reblogged is True
    assert fan.status(deal.id).reblogged is True
    undone = fan.status_unreblog(deal.id)
    assert undone.reblogged is False
    assert (undone.reblogs_count, undone.quotes_count) == (1, 1)  # the quote stays
    shop.account_follow(fan.account_verify_credentials().id)
    fan.account_follow(shop.account_verify_credentials().id)
    home = {status.id: status for status in fan.timeline_home()}
    assert home[deal.id].reblogged is False
