"""Searching accounts by name and topics by name."""

from typing import Any

import pytest

from weituan.core.errors import ValidationFailed
from weituan.core.testing import make_user
from weituan.microblog.models import Block, Follow, Topic
from weituan.microblog.search.queries import Page, accounts_search, topics_search
from weituan.microblog.services.posts import post_create, post_delete

pytestmark = pytest.mark.django_db


def usernames(users: list[Any]) -> list[str]:
    return [user.username for user in users]


def test_accounts_match_username_and_display_name_prefixes(
    shopper: Any, merchant: Any, outsider: Any, operator: Any
) -> None:
    assert usernames(accounts_search(query="ali", viewer=outsider)) == ["alice"]
    assert usernames(accounts_search(query="@ALICE", viewer=outsider)) == ["alice"]
    assert usernames(accounts_search(query="char", viewer=None)) == ["charlie"]
    assert usernames(accounts_search(query="lice", viewer=None)) == []  # Latin needs a prefix


def test_accounts_match_a_later_word_of_the_display_name(db: Any) -> None:
    make_user("hotpot_chen", display_name="Chen's Hotpot 陈记火锅")
    make_user("tea_lab", display_name="Milk Tea Lab")
    assert usernames(accounts_search(query="hotpot", viewer=None)) == ["hotpot_chen"]
    assert usernames(accounts_search(query="Tea L", viewer=None)) == ["tea_lab"]
    assert usernames(accounts_search(query="otpot", viewer=None)) == []  # still from a word's start


def test_accounts_match_chinese_inside_the_display_name(shopper: Any, merchant: Any) -> None:
    assert usernames(accounts_search(query="小店", viewer=shopper)) == ["meituan_shop"]
    assert usernames(accounts_search(query="丽丝", viewer=merchant)) == ["alice"]


def test_exact_username_ranks_before_prefixes(db: Any) -> None:
    make_user("deal_hunter", display_name="Hunter")
    make_user("deal", display_name="Deal")
    make_user("dealer", display_name="")
    assert usernames(accounts_search(query="deal", viewer=None)) == ["deal", "deal_hunter", "dealer"]
    assert usernames(accounts_search(query="deal", viewer=None, page=Page(limit=1, offset=1))) == [
        "deal_hunter"
    ]


def test_blocked_accounts_and_inactive_ones_are_left_out(shopper: Any, merchant: Any, outsider: Any) -> None:
    Block.objects.create(blocker=merchant, blocked=shopper)
    assert usernames(accounts_search(query="meituan", viewer=shopper)) == []
    assert usernames(accounts_search(query="alice", viewer=merchant)) == []
    assert usernames(accounts_search(query="meituan", viewer=outsider)) == ["meituan_shop"]
    outsider.is_active = False
    outsider.save(update_fields=["is_active"])
    assert usernames(accounts_search(query="charlie", viewer=None)) == []


def test_following_only(shopper: Any, merchant: Any) -> None:
    make_user("meituan_fan")
    assert usernames(accounts_search(query="meituan", viewer=shopper, following_only=True)) == []
    Follow.objects.create(follower=shopper, followee=merchant)
    assert usernames(accounts_search(query="meituan", viewer=shopper, following_only=True)) == [
        "meituan_shop"
    ]


def test_topics_match_by_prefix_first_then_substring(db: Any) -> None:
    Topic.objects.create(name="双11团购", display="双11团购", posts_count=3)
    Topic.objects.create(name="团购", display="团购", posts_count=1)
    Topic.objects.create(name="团购节", display="团购节", posts_count=9)
    Topic.objects.create(name="deals", display="Deals", posts_count=2)

    assert [t.name for t in topics_search(query="#团购#")] == ["团购", "团购节", "双11团购"]
    assert [t.name for t in topics_search(query="#DEAL")] == ["deals"]
    assert [t.name for t in topics_search(query="购节")] == ["团购节"]
    assert topics_search(query="#") == []


def test_topics_are_ranked_and_shown_by_their_uses_as_they_stand(shopper: Any, merchant: Any) -> None:
    # A count kept on the topic's row (as before counters had shares) adds to the uses counted since.
    Topic.objects.create(name="团购周", display="团购周", posts_count=2)
    for text in ["#团购周# 一", "#团购周# 二", "#团购日# 一", "#团购日# 二", "#团购日# 三", "#团购节# 一"]:
        post_create(author=shopper, text=text)
    doomed = post_create(author=merchant, text="#团购节# 删掉")
    post_delete(actor=merchant, post_id=doomed.id)

    found = topics_search(query="团购")
    assert [(t.name, t.posts_count) for t in found] == [("团购周", 4), ("团购日", 3), ("团购节", 1)]


def test_an_over_long_query_is_refused(db: Any) -> None:
    with pytest.raises(ValidationFailed) as error:
        topics_search(query="x" * 201)
    assert error.value.code == "query_too_long"
