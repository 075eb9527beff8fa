"""Mastodon.py, logged in with the `read` scope only: it reads, and writes are refused with 403."""

from typing import Any

import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError

from weituan.accounts.models import User
from weituan.microblog.models import Like, Post
from weituan.microblog.services.posts import post_create


@pytest.mark.django_db(transaction=True)
def test_mastodon_py_with_a_read_only_login(live_server: Any, shopper: User, merchant: User) -> None:
    post = post_create(author=merchant, text="只读客户端")
    client_id, client_secret = Mastodon.create_app(
        "Weituan read-only", scopes=["read"], api_base_url=live_server.url
    )
    api = Mastodon(
        client_id=client_id,
        client_secret=client_secret,
        api_base_url=live_server.url,
        version_check_mode="none",
    )
    api.log_in("alice@example.test", "correct horse battery", allow_http=True, scopes=["read"])
    assert int(api.status(post.id).id) == post.id
    assert api.timeline_home() == []
    with pytest.raises(MastodonAPIError) as denied:
        api.status_favourite(post.id)
    assert denied.value.args[1] == 403
    assert "outside the authorized scopes" in str(denied.value.args)
    with pytest.raises(MastodonAPIError) as refused:
        api.notifications_clear()
    assert refused.value.args[1] == 403
    assert Post.objects.count() == 1 and Like.objects.count() == 0
