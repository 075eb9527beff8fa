"""Mastodon.py, a real client, searching and reading trends against a live server."""

from typing import Any

import pytest
from mastodon import Mastodon

from weituan.accounts.tokens import access_token_issue
from weituan.microblog.models import Topic
from weituan.microblog.services.posts import post_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_mastodon_py_searches_and_reads_trends(live_server: Any, shopper: Any, merchant: Any) -> None:
    post = post_create(author=merchant, text="今天的团购很划算 #周末团购#")
    Topic.objects.create(name="团购节", display="团购节")
    raw, _ = access_token_issue(user=shopper)
    client = Mastodon(
        api_base_url=live_server.url, access_token=raw, mastodon_version="4.5.0", version_check_mode="none"
    )

    found = client.search_v2("划算", result_type="statuses")
    assert [str(status.id) for status in found.statuses] == [str(post.id)]
    assert found.statuses[0].account.acct == "meituan_shop"

    tags = client.search_v2("团购", result_type="hashtags")
    assert sorted(tag.name for tag in tags.hashtags) == ["周末团购", "团购节"]
    assert len(tags.hashtags[0].history) == 7

    people = client.search_v2("小店", result_type="accounts")
    assert [account.acct for account in people.accounts] == ["meituan_shop"]

    assert client.trending_tags() == []  # one author is not a trend
