"""Grouped notifications (Mastodon's API v2, which clients use once the instance reports API version 2 or
later), through the real Mastodon.py against a live server: likes and plain reposts of a post on one day
grouped, everything else alone, paging that neither skips nor repeats, one group, its accounts,
dismissing it, and the unread count of groups."""

from typing import Any

import httpx
import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonNotFoundError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import PASSWORD, SCOPES

pytestmark = pytest.mark.django_db(transaction=True)


def _clients(live_server: Any, *usernames: str) -> list[Mastodon]:
    app = Mastodon.create_app("Weituan groups", scopes=SCOPES, api_base_url=live_server.url)
    clients = []
    for username in usernames:
        client = Mastodon(
            client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="created"
        )
        client.log_in(username, PASSWORD, scopes=SCOPES, allow_http=True)
        clients.append(client)
    return clients


def _people(live_server: Any) -> list[Mastodon]:
    return _clients(live_server, "meituan_shop", "alice", "charlie", "olivia")


def test_likes_and_plain_reposts_of_a_post_are_grouped(
    live_server: Any, merchant: User, shopper: User, outsider: User, operator: User
) -> None:
    shop, alice, charlie, olivia = _people(live_server)
    deal = shop.status_post("今晚 #团购#")
    alice.status_favourite(deal.id)
    charlie.status_favourite(deal.id)
    alice.status_reblog(deal.id)
    charlie.status_reblog(deal.id)
    olivia.status_post("一起拼", quoted_status_id=deal.id)  # a quote says something: never grouped
    olivia.status_favourite(deal.id)
    olivia.account_follow(shop.account_verify_credentials().id)

    results = shop.grouped_notifications(expand_accounts="full")
    groups = results.notification_groups
    assert [(group.type, group.notifications_count) for group in groups] == [
        ("follow", 1),
        ("favourite", 3),
        ("quote", 1),
        ("reblog", 2),
    ]
    ids = {
        name: client.account_verify_credentials().id
        for name, client in zip(("alice", "charlie", "olivia"), (alice, charlie, olivia), strict=True)
    }
    favourites = groups[1]
    assert favourites.sample_account_ids == [ids["olivia"], ids["charlie"], ids["alice"]]
    assert favourites.status_id == deal.id
    assert groups[3].sample_account_ids == [ids["charlie"], ids["alice"]]
    assert groups[3].status_id == deal.id  # a reblog is about the post reposted, as on v1
    assert {account.id for account in results.accounts} == set(ids.values())
    assert deal.id in [status.id for status in results.statuses]
    assert len({status.id for status in results.statuses}) == len(results.statuses)

    # v1 gives each notification the key of the group it is in.
    by_v1 = {(note.type, note.group_key) for note in shop.notifications()}
    assert {(group.type, group.group_key) for group in groups} == by_v1

    # Without grouping asked for a type, its notifications stand alone.
    alone = shop.grouped_notifications(grouped_types=["reblog"]).notification_groups
    assert [(group.type, group.notifications_count) for group in alone] == [
        ("follow", 1),
        ("favourite", 1),
        ("quote", 1),
        ("reblog", 2),
        ("favourite", 1),
        ("favourite", 1),
    ]
    assert [group.type for group in shop.grouped_notifications(types=["favourite"]).notification_groups] == [
        "favourite"
    ]


def test_paging_through_groups_neither_skips_nor_repeats(
    live_server: Any, merchant: User, shopper: User, outsider: User, operator: User
) -> None:
    shop, alice, charlie, olivia = _people(live_server)
    posts = [shop.status_post(f"第{n}单") for n in range(3)]
    for post in posts:
        alice.status_favourite(post.id)
    charlie.status_favourite(posts[0].id)  # brings the first post's group to the top
    olivia.account_follow(shop.account_verify_credentials().id)

    whole = shop.grouped_notifications().notification_groups
    assert [(group.type, group.notifications_count) for group in whole] == [
        ("follow", 1),
        ("favourite", 2),
        ("favourite", 1),
        ("favourite", 1),
    ]
    seen: list[tuple[str, str, str]] = []
    page = shop.grouped_notifications(limit=1)
    while page.notification_groups:
        assert len(page.notification_groups) == 1
        seen += [(g.group_key, g.page_max_id, g.page_min_id) for g in page.notification_groups]
        page = shop.fetch_next(page)
        if page is None:
            break
    # The first post's group spans the others: its older like comes back on a later page, same key.
    assert [key for key, _, _ in seen] == [
        whole[0].group_key,
        whole[1].group_key,
        whole[2].group_key,
        whole[3].group_key,
        whole[1].group_key,
    ]
    pages = sorted((int(newest), int(oldest)) for _, newest, oldest in seen)
    notes = sorted(int(note.id) for note in shop.notifications())
    assert [oldest for _, oldest in pages] == notes  # one notification a page, each once

    # min_id reads forward from a point: the groups just after it.
    oldest = notes[0]
    after = shop.grouped_notifications(min_id=oldest, limit=2).notification_groups
    assert [int(group.page_min_id) for group in after] == [notes[2], notes[1]]


def test_one_group_its_accounts_dismissing_it_and_the_unread_count(
    live_server: Any, merchant: User, shopper: User, outsider: User, operator: User
) -> None:
    shop, alice, charlie, olivia = _people(live_server)
    deal = shop.status_post("今晚 #团购#")
    alice.status_favourite(deal.id)
    charlie.status_favourite(deal.id)
    olivia.account_follow(shop.account_verify_credentials().id)
    assert shop.unread_grouped_notifications_count() == 2
    assert shop.notifications_unread_count().count == 3
    # The v1 count takes the list's filters and its cap, as Mastodon's does.
    alice_id = alice.account_verify_credentials().id

    def unread(**params: Any) -> int:
        answer = httpx.get(
            f"{live_server.url}/api/v1/notifications/unread_count",
            params=params,
            headers={"Authorization": f"Bearer {shop.access_token}"},
        )
        return int(answer.json()["count"])

    assert unread(**{"types[]": "favourite"}) == 2
    assert unread(**{"exclude_types[]": "favourite"}) == 1
    assert unread(account_id=str(alice_id)) == 1
    assert unread(limit="2") == 2
    assert shop.unread_grouped_notifications_count(types=["follow"]) == 1

    key = shop.grouped_notifications().notification_groups[1].group_key
    one = shop.grouped_notification(key).notification_groups
    assert [(group.group_key, group.notifications_count) for group in one] == [(key, 2)]
    assert [account.acct for account in shop.grouped_notification_accounts(key)] == ["charlie", "alice"]

    shop.dismiss_grouped_notification(key)
    assert [note.type for note in shop.notifications()] == ["follow"]
    assert shop.unread_grouped_notifications_count() == 1
    with pytest.raises(MastodonNotFoundError):
        shop.grouped_notification(key)
    # Another account's key names nothing of the caller's.
    with pytest.raises(MastodonNotFoundError):
        alice.grouped_notification(shop.grouped_notifications().notification_groups[0].group_key)
    for junk in ("favourite-1-99999999999", "ungrouped-99999999999999999999999", "nothing"):
        with pytest.raises(MastodonNotFoundError):
            shop.grouped_notification(junk)


def test_likes_on_different_days_are_different_groups(
    live_server: Any, merchant: User, shopper: User, outsider: User, operator: User, clock: Any
) -> None:
    shop, alice, charlie, _ = _people(live_server)
    deal = shop.status_post("今晚 #团购#")
    alice.status_favourite(deal.id)
    clock.forward(86400)
    charlie.status_favourite(deal.id)
    groups = shop.grouped_notifications().notification_groups
    assert [(group.type, group.notifications_count) for group in groups] == [
        ("favourite", 1),
        ("favourite", 1),
    ]
    assert groups[0].group_key != groups[1].group_key


def test_the_notification_policy_accepts_everything_and_nothing_waits(
    live_server: Any, merchant: User
) -> None:
    (shop,) = _clients(live_server, "meituan_shop")
    policy = shop.notifications_policy()
    assert {
        name: policy[name]
        for name in ("for_not_following", "for_not_followers", "for_new_accounts", "for_private_mentions")
    } == dict.fromkeys(
        ("for_not_following", "for_not_followers", "for_new_accounts", "for_private_mentions"), "accept"
    )
    assert policy.summary.pending_requests_count == 0
    assert shop.notification_requests() == []
    assert shop.notifications_merged() is True
