"""The rest of what a Mastodon client does, through the real Mastodon.py against a live server: signing in
with the authorization-code flow, both instance documents, unfollowing, undoing a reblog and a favourite,
and the trends."""

from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from mastodon import Mastodon

from weituan.accounts.models import User

PASSWORD = "correct horse battery"
OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = ["read", "write", "follow"]

pytestmark = pytest.mark.django_db(transaction=True)


def _client(live_server: Any, app: tuple[str, str]) -> Mastodon:
    return Mastodon(
        client_id=app[0], client_secret=app[1], api_base_url=live_server.url, version_check_mode="created"
    )


def _app(live_server: Any) -> tuple[str, str]:
    return Mastodon.create_app("Weituan more", scopes=SCOPES, redirect_uris=OOB, api_base_url=live_server.url)


def test_sign_in_with_the_authorization_code_flow(live_server: Any, shopper: User) -> None:
    app = _app(live_server)
    client = _client(live_server, app)
    url = urlsplit(client.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True))
    assert url.path == "/oauth/authorize"

    # The person approves in their browser, signed in; the page shows the code to paste into the app.
    browser = Client()
    browser.force_login(shopper)
    form = browser.get(f"{url.path}?{url.query}")
    assert form.status_code == 200
    fields = {name: value[0] for name, value in form.wsgi_request.GET.lists()}
    approved = browser.post(url.path, {**fields, "decision": "approve"})
    assert approved.status_code == 200
    code = approved.context["code"]

    client.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    me = client.account_verify_credentials()
    assert me.username == "alice"
    assert client.app_verify_credentials().name == "Weituan more"


def test_instances_unfollow_undo_and_trends(live_server: Any, merchant: User) -> None:
    app = _app(live_server)
    shop = _client(live_server, app)
    shop.log_in("meituan_shop", PASSWORD, scopes=SCOPES, allow_http=True)
    fan = _client(live_server, app)
    fan.create_account(
        "xiaoming", "a long passphrase", "xiaoming@example.test", agreement=True, scopes=SCOPES
    )

    v1, v2 = fan.instance_v1(), fan.instance_v2()
    assert v1.uri and v2.domain and v1.version == v2.version
    assert fan.verify_minimum_version("4.0.0", cached=False)

    shop_id = fan.account_lookup("meituan_shop").id
    assert fan.account_follow(shop_id).following is True
    assert shop.account_verify_credentials().followers_count == 1
    assert fan.account_unfollow(shop_id).following is False
    assert shop.account_verify_credentials().followers_count == 0
    assert fan.account_relationships([shop_id])[0].following is False

    post = shop.status_post("双十一 #拼团# 今晚开抢")
    reblog = fan.status_reblog(post.id)
    assert reblog.reblog.id == post.id
    assert shop.status(post.id).reblogs_count == 1
    assert fan.status_unreblog(post.id).reblogged is False
    assert shop.status(post.id).reblogs_count == 0
    assert fan.status_favourite(post.id).favourited is True
    undone = fan.status_unfavourite(post.id)
    assert (undone.favourited, undone.favourites_count) == (False, 0)

    # Trends: a topic one account used is not trending, and no post is engaged with once the reblog and
    # the favourite are undone (search/tests/test_mastodon_client.py reads a real trend's shape).
    assert fan.trending_tags() == []
    assert fan.trending_statuses() == []
    assert fan.trending_links() == []
