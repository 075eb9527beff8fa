"""Mastodon.py, a real client, searching and reading trends against a live server."""

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.utils import timezone
from mastodon import Mastodon

from weituan.accounts.tokens import access_token_issue
from weituan.core.redis import rkey
from weituan.core.testing import make_user
from weituan.microblog.models import Topic
from weituan.microblog.services.interactions import like_add
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import follow_create

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

    # Six long-standing accounts, none following or mentioning another, take the topic up today.
    joined = timezone.now() - timedelta(days=60)
    for n in range(6):
        post_create(author=make_user(f"neighbour{n}", date_joined=joined), text=f"第{n}个拼 #周末团购#")
    # Five accounts following their neighbours in a circle push another topic: a ring, not a trend.
    ring = [make_user(f"ring{n}", date_joined=joined) for n in range(5)]
    for n, member in enumerate(ring):
        follow_create(follower=member, followee_id=ring[(n + 1) % 5].id)
        follow_create(follower=member, followee_id=ring[(n - 1) % 5].id)
        post_create(author=member, text="快来买 #买买买#")
    like_add(user=shopper, post_id=post.id)
    for ranking in ("topics", "statuses"):  # as if the five minutes a ranking is kept had passed
        cache.delete(rkey("trends", ranking))

    (tag,) = client.trending_tags()
    assert tag.name == "周末团购"
    assert tag.url == f"{live_server.url}/topics/{quote('周末团购')}"
    assert tag.following is False
    # Seven UTC days, today first; the merchant's and the six neighbours' posts, one account each.
    days = [entry.day for entry in tag.history]
    assert days == [days[0] - timedelta(days=back) for back in range(7)]
    assert sum(int(entry.uses) for entry in tag.history) == 7
    assert sum(int(entry.accounts) for entry in tag.history) == 7

    # The merchant's liked post is the one recent post anybody engaged with.
    assert [str(status.id) for status in client.trending_statuses()] == [str(post.id)]
    assert client.trending_links() == []  # Weituan shows no link preview cards


def test_a_link_to_a_post_or_a_profile_opens_it_through_search(
    live_server: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    post = post_create(author=merchant, text="今晚开团 划算")
    followers_only = post_create(author=merchant, text="只给粉丝看 划算", visibility="private")
    raw, _ = access_token_issue(user=shopper)
    client = Mastodon(
        api_base_url=live_server.url, access_token=raw, mastodon_version="4.5.0", version_check_mode="none"
    )
    permalink = client.status(post.id).url
    assert permalink == f"{live_server.url}/@meituan_shop/{post.id}"

    # What a client does with a tapped or pasted link: search for it, resolving, and open what comes.
    for url in (permalink, f"{live_server.url}/p/{post.id}"):
        found = client.search_v2(url, resolve=True)
        assert [str(status.id) for status in found.statuses] == [str(post.id)]
        assert (found.accounts, found.hashtags) == ([], [])
    profile = client.search_v2(f"{live_server.url}/@meituan_shop", resolve=True)
    assert [account.acct for account in profile.accounts] == ["meituan_shop"]
    assert profile.statuses == []
    assert client.search_v2(permalink, resolve=True, result_type="accounts").accounts == []

    # Nothing the reader may not see, nothing under another author's name, nothing from elsewhere.
    for url in (
        f"{live_server.url}/@meituan_shop/{followers_only.id}",
        f"{live_server.url}/@{outsider.username}/{post.id}",
        f"{live_server.url}/@nobody_here",
        f"{live_server.url}/p/99999999999999999999999",
        f"https://elsewhere.example/@meituan_shop/{post.id}",
    ):
        nothing = client.search_v2(url, resolve=True)
        assert (nothing.accounts, nothing.statuses, nothing.hashtags) == ([], [], [])
    follow_create(follower=shopper, followee_id=merchant.id)
    shown = client.search_v2(f"{live_server.url}/@meituan_shop/{followers_only.id}", resolve=True)
    assert [str(status.id) for status in shown.statuses] == [str(followers_only.id)]
