"""Accounts to find. Follow suggestions, through the real Mastodon.py against a live server: accounts the
accounts you follow follow first, then the most followed; never yourself, those you follow or asked to,
nor hidden ones. The profile directory: accounts that chose to be found, by activity or by sign-up."""

from typing import Any

import httpx
import pytest
from mastodon import Mastodon

from weituan.accounts.models import User
from weituan.core.testing import make_user
from weituan.mastodon.tests.clients import PASSWORD, SCOPES
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create, mute_create


def _client(live_server: Any, username: str) -> Mastodon:
    app = Mastodon.create_app("Weituan suggestions", scopes=SCOPES, api_base_url=live_server.url)
    client = Mastodon(
        client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="created"
    )
    client.log_in(username, PASSWORD, scopes=SCOPES, allow_http=True)
    return client


@pytest.mark.django_db(transaction=True)
def test_suggestions_friends_of_friends_first_then_the_most_followed(
    live_server: Any, merchant: User, shopper: User, outsider: User, operator: User
) -> None:
    dave, erin = make_user("dave"), make_user("erin")
    # alice follows the shop and dave; erin follows the shop too; charlie is followed by three.
    for follower, followee in [
        (shopper, merchant),
        (shopper, dave),
        (erin, merchant),
        (dave, outsider),
        (erin, outsider),
        (merchant, outsider),
    ]:
        follow_create(follower=follower, followee_id=followee.pk)
    olivia = _client(live_server, "olivia")
    olivia.account_follow(shopper.pk)

    found = olivia.suggestions_v2()
    assert [(s.account.acct, s.sources, s.source) for s in found] == [
        ("meituan_shop", ["friends_of_friends"], "past_interactions"),  # as shared as dave, older
        ("dave", ["friends_of_friends"], "past_interactions"),
        ("charlie", ["most_followed"], "global"),
    ]
    assert [account.acct for account in olivia.suggestions_v1()] == ["meituan_shop", "dave", "charlie"]
    first = httpx.get(
        f"{live_server.url}/api/v2/suggestions",
        params={"limit": "1"},
        headers={"Authorization": f"Bearer {olivia.access_token}"},
    )
    assert [entry["account"]["acct"] for entry in first.json()] == ["meituan_shop"]

    olivia.account_follow(dave.pk)
    olivia.account_block(merchant.pk)
    # dave followed now, the shop hidden: charlie comes through dave; no one else is followed by anyone.
    assert [(s.account.acct, s.sources) for s in olivia.suggestions_v2()] == [
        ("charlie", ["friends_of_friends"])
    ]


@pytest.mark.django_db
def test_the_directory_lists_accounts_that_chose_to_be_found(api_as: Any) -> None:
    _quiet, early, late, hidden, reader = (
        make_user(name) for name in ("quiet", "early", "late", "hidden", "reader")
    )
    post_create(author=early, text="早")
    post_create(author=late, text="晚")
    hidden.discoverable = False
    hidden.save(update_fields=["discoverable"])
    client = api_as(reader)

    def names(query: str = "") -> list[str]:
        return [account["acct"] for account in client.get(f"/api/v1/directory{query}").json()]

    assert names() == ["late", "early", "reader", "quiet"]  # by latest post; never posted: newest first
    assert names("?order=new") == ["reader", "late", "early", "quiet"]
    assert names("?order=new&local=true&limit=2&offset=1") == ["late", "early"]
    mute_create(muter=reader, muted_id=late.pk)
    assert names() == ["early", "reader", "quiet"]
    assert client.get("/api/v1/directory?order=sideways").status_code == 422
