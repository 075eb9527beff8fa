"""Mastodon 4.5 quote policies through the real Mastodon.py (which checks the server's version before it
calls them): who may quote a post, a post's QuoteApproval as each reader sees it, the quotes of a post,
revoking one, and the account's default."""

from typing import Any

import pytest
import requests
from mastodon import Mastodon, MastodonAPIError

from weituan.accounts.models import User
from weituan.microblog.models import Post

OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = ["read", "write", "follow"]

pytestmark = pytest.mark.django_db(transaction=True)


def _people(live_server: Any) -> tuple[Mastodon, Mastodon, Mastodon]:
    """A shop, a fan who follows it, and a passer-by who does not: each signed up through the API."""
    app = Mastodon.create_app(
        "Weituan quotes", scopes=SCOPES, redirect_uris=OOB, api_base_url=live_server.url
    )
    clients = []
    for name in ("noodle_shop", "fan", "passerby"):
        client = Mastodon(
            client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="created"
        )
        client.create_account(
            name, "a long passphrase", f"{name}@example.test", agreement=True, scopes=SCOPES
        )
        clients.append(client)
    shop, fan, passerby = clients
    fan.account_follow(fan.account_lookup("noodle_shop").id)
    return shop, fan, passerby


def test_a_followers_policy_lets_followers_quote_and_refuses_others(live_server: Any) -> None:
    shop, fan, passerby = _people(live_server)
    assert shop.verify_minimum_version("4.5.0", cached=False)
    post = shop.status_post("今晚面馆 #拼团# 三人成团", quote_approval_policy="followers")
    assert post.quote_approval.automatic == ["followers"] and post.quote_approval.manual == []
    assert post.quote_approval.current_user == "automatic"  # the author may always quote
    assert fan.status(post.id).quote_approval.current_user == "automatic"
    assert passerby.status(post.id).quote_approval.current_user == "denied"

    quote = fan.status_post("我来一份！", quoted_status_id=post.id)
    assert quote.quote.state == "accepted" and quote.quote.quoted_status.id == post.id
    with pytest.raises(MastodonAPIError) as refused:
        passerby.status_post("我也要", quoted_status_id=post.id)
    assert refused.value.args[1] == 403 and "does not allow" in refused.value.args[3]
    assert passerby.status_reblog(post.id).reblog.id == post.id  # a plain repost is not a quote
    assert shop.status(post.id).quotes_count == 1


def test_the_home_timeline_shows_each_reader_their_own_quote_approval(live_server: Any) -> None:
    shop, fan, _passerby = _people(live_server)
    followers_only = shop.status_post("只给粉丝引用", quote_approval_policy="followers")
    just_me = shop.status_post("谁都别引用", quote_approval_policy="nobody")
    anyone = shop.status_post("随便引用")
    for _ in range(2):  # the second read comes from the kept renderings
        home = {status.id: status.quote_approval for status in fan.timeline_home()}
        assert home[followers_only.id].current_user == "automatic"
        assert home[just_me.id].current_user == "denied" and home[just_me.id].automatic == []
        assert home[anyone.id].current_user == "automatic" and home[anyone.id].automatic == ["public"]
        mine = {status.id: status.quote_approval for status in shop.timeline_home()}
        assert mine[just_me.id].current_user == "automatic"
    fan.account_unfollow(fan.account_lookup("noodle_shop").id)
    assert fan.status(followers_only.id).quote_approval.current_user == "denied"


def test_changing_the_policy_listing_and_revoking_quotes(live_server: Any) -> None:
    shop, fan, passerby = _people(live_server)
    post = shop.status_post("招牌牛肉面 38 元")
    first = fan.status_post("好吃", quoted_status_id=post.id)
    second = passerby.status_post("排队两小时", quoted_status_id=post.id)
    plain = fan.status_reblog(post.id)
    assert [status.id for status in shop.status_quotes(post.id)] == [second.id, first.id]
    assert plain.id not in [status.id for status in shop.status_quotes(post.id)]

    revoked = shop.status_quote_revoke(post.id, second.id)
    assert (
        revoked.id == second.id and revoked.quote.state == "revoked" and revoked.quote.quoted_status is None
    )
    assert passerby.status(second.id).quote.state == "revoked"  # it stays, with its own words
    assert [status.id for status in shop.status_quotes(post.id)] == [first.id]
    assert shop.status(post.id).quotes_count == 1
    assert shop.status_quote_revoke(post.id, second.id).quote.state == "revoked"  # once is enough
    assert shop.status(post.id).quotes_count == 1
    with pytest.raises(MastodonAPIError) as not_theirs:
        passerby.status_quote_revoke(post.id, first.id)
    assert not_theirs.value.args[1] == 404
    passerby.status_delete(second.id)  # deleting a revoked quote does not count it off twice
    assert shop.status(post.id).quotes_count == 1

    changed = shop.status_update_quote_approval_policy(post.id, "nobody")
    assert changed.quote_approval.automatic == [] and changed.quote_approval.current_user == "automatic"
    with pytest.raises(MastodonAPIError) as refused:
        fan.status_post("再来一碗", quoted_status_id=post.id)
    assert refused.value.args[1] == 403
    assert fan.status(first.id).quote.state == "accepted"  # past quotes stay until revoked
    with pytest.raises(MastodonAPIError) as not_author:
        fan.status_update_quote_approval_policy(post.id, "public")
    assert not_author.value.args[1] == 403
    bad = requests.put(  # a value Mastodon.py itself would not send
        f"{live_server.url}/api/v1/statuses/{post.id}/interaction_policy",
        json={"quote_approval_policy": "friends"},
        headers={"Authorization": f"Bearer {shop.access_token}"},
        timeout=10,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_quote_policy"


def test_the_account_default_applies_to_new_posts_and_followers_only_posts_are_never_quotable(
    live_server: Any,
) -> None:
    shop, fan, _passerby = _people(live_server)
    me = shop.account_update_credentials(default_quote_policy="nobody")
    assert me.source.quote_policy == "nobody"
    assert shop.preferences().posting_default_quote_policy == "nobody"
    post = shop.status_post("新品预告")
    assert post.quote_approval.automatic == []
    assert Post.objects.get(id=post.id).quote_policy == "nobody"
    public = shop.status_post("这条谁都能引用", quote_approval_policy="public")
    assert public.quote_approval.automatic == ["public"]
    private = shop.status_post("仅粉丝可见", visibility="private", quote_approval_policy="public")
    assert private.quote_approval.automatic == []
    bad = requests.patch(
        f"{live_server.url}/api/v1/accounts/update_credentials",
        data={"source[quote_policy]": "everyone"},
        headers={"Authorization": f"Bearer {shop.access_token}"},
        timeout=10,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_quote_policy"
    assert User.objects.get(username="noodle_shop").quote_policy == "nobody"
    del fan
