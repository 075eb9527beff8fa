"""The real Mastodon.py client against a live Weituan server: apps, log in, credentials, registration."""

import io
from typing import Any

import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError, MastodonIllegalArgumentError
from PIL import Image

from weituan.accounts.models import User
from weituan.core.testing import make_user

PASSWORD = "correct horse battery"


def _client_for(live_server: Any, scopes: list[str] | None = None) -> Mastodon:
    client_id, client_secret = Mastodon.create_app(
        "Weituan test", scopes=scopes or ["read", "write", "follow", "push"], api_base_url=live_server.url
    )
    return Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=live_server.url,
        version_check_mode="created",
    )


@pytest.mark.django_db(transaction=True)
def test_log_in_verify_and_update_credentials(live_server: Any, shopper: User) -> None:
    api = _client_for(live_server)
    # The version check ran against /api/v1/instance and accepted "4.5.0 (compatible; Weituan ...)".
    assert api.verify_minimum_version("4.5.0", cached=True)
    assert api.mastodon_api_version == 7

    token = api.log_in("alice@example.test", PASSWORD, allow_http=True)
    assert token

    me = api.account_verify_credentials()
    assert (me.username, me.acct, me.display_name, int(me.id)) == (
        "alice",
        "alice",
        "Alice 爱丽丝",
        shopper.pk,
    )
    assert me.source.privacy == "public"

    avatar = io.BytesIO()
    Image.new("RGB", (500, 500), (200, 0, 0)).save(avatar, "PNG")
    updated = api.account_update_credentials(
        display_name="爱丽丝 via Mastodon.py",
        note="团购 & 转发",
        avatar=avatar.getvalue(),
        avatar_mime_type="image/png",
        bot=True,
    )
    assert (updated.display_name, updated.note, updated.bot) == (
        "爱丽丝 via Mastodon.py",
        "<p>团购 &amp; 转发</p>",
        True,
    )
    assert updated.avatar.startswith(live_server.url + "/media/avatars/")
    shopper.refresh_from_db()
    assert (shopper.display_name, shopper.bio) == ("爱丽丝 via Mastodon.py", "团购 & 转发")

    make_user("xiaolongbao")
    linked = api.account_update_credentials(note="hi @xiaolongbao #团购")
    assert linked.note == (
        f'<p>hi <span class="h-card"><a href="{live_server.url}/@xiaolongbao" class="u-url mention">'
        f'@<span>xiaolongbao</span></a></span> <a href="{live_server.url}/topics/%E5%9B%A2%E8%B4%AD"'
        ' class="mention hashtag" rel="tag">#团购</a></p>'
    )
    assert api.account_verify_credentials().source.note == "hi @xiaolongbao #团购"

    looked_up = api.account_lookup("alice")
    assert looked_up.display_name == "爱丽丝 via Mastodon.py"
    assert api.account(shopper.pk).username == "alice"
    assert api.app_verify_credentials().name == "Weituan test"

    instance = api.instance()
    assert instance.configuration.statuses.max_characters == 280

    api.revoke_access_token(allow_http=True)
    with pytest.raises(MastodonAPIError):
        Mastodon(access_token=token, api_base_url=live_server.url).account_verify_credentials()


@pytest.mark.django_db(transaction=True)
def test_log_in_by_username_and_wrong_password(live_server: Any, shopper: User) -> None:
    api = _client_for(live_server)
    with pytest.raises(MastodonIllegalArgumentError):
        api.log_in("alice", "wrong password", allow_http=True)
    assert api.log_in("alice", PASSWORD, allow_http=True)
    assert api.me().username == "alice"


@pytest.mark.django_db(transaction=True)
def test_create_account_without_agreement_is_refused(live_server: Any) -> None:
    # Mastodon.py leaves `agreement` out unless told agreement=True.
    api = _client_for(live_server)
    token, error = api.create_account(
        "new_shopper", "a long passphrase", "new@example.test", return_detailed_error=True
    )
    assert token is None
    assert error.details.agreement[0].error == "ERR_ACCEPTED"
    with pytest.raises(MastodonIllegalArgumentError):
        api.create_account("new_shopper", "a long passphrase", "new@example.test", agreement=False)
    assert not User.objects.filter(username="new_shopper").exists()


@pytest.mark.django_db(transaction=True)
def test_create_account_with_an_app_token(live_server: Any) -> None:
    api = _client_for(live_server)
    token = api.create_account("new_shopper", "a long passphrase", "new@example.test", agreement=True)
    assert token
    assert api.account_verify_credentials().username == "new_shopper"
    assert User.objects.get(username="new_shopper").email == "new@example.test"

    other = _client_for(live_server)
    token, error = other.create_account(
        "NEW_SHOPPER", "a long passphrase", "second@example.test", agreement=True, return_detailed_error=True
    )
    assert token is None
    assert error.details.username[0].error == "ERR_TAKEN"
    assert User.objects.count() == 1
