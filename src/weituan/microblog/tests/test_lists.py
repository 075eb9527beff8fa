"""Follow lists (分组): making, renaming and deleting them, who may be in one, the caps, members leaving
with an unfollow or a block, and a list's timeline as the home timeline shows its members."""

from typing import Any

import pytest

from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.testing import make_user
from weituan.microblog.models import FollowList, FollowListMember
from weituan.microblog.queries.lists import (
    follow_list_for_owner,
    follow_list_member_ids,
    follow_lists_of,
    follow_lists_with_account,
)
from weituan.microblog.services import lists as list_services
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.lists import (
    follow_list_create,
    follow_list_delete,
    follow_list_members_add,
    follow_list_members_remove,
    follow_list_update,
)
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.services.relations import block_create, follow_create, follow_delete, mute_create
from weituan.microblog.timelines import lists as list_timelines
from weituan.microblog.timelines.lists import list_timeline_ids

pytestmark = pytest.mark.django_db


def _refused(call: Any) -> tuple[int, str]:
    with pytest.raises((ValidationFailed, NotFound)) as refused:
        call()
    return refused.value.status, refused.value.code


def _page(owner: Any, follow_list: FollowList, **bounds: Any) -> list[int]:
    return list_timeline_ids(owner.pk, follow_list.pk, hidden=frozenset(), **bounds)


def test_a_list_is_made_renamed_and_deleted_by_its_owner_only(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    shops = follow_list_create(owner=shopper, title="  好店  ")
    assert (shops.title, shops.replies_policy, shops.exclusive) == ("好店", "list", False)
    follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk])

    renamed = follow_list_update(owner=shopper, list_id=shops.pk, title="常去的店", replies_policy="none")
    assert (renamed.title, renamed.replies_policy) == ("常去的店", "none")
    assert [(row.title, row.replies_policy) for row in follow_lists_of(shopper.pk)] == [("常去的店", "none")]

    # Someone else's list is not found, and they change nothing of it.
    assert _refused(lambda: follow_list_for_owner(outsider.pk, shops.pk)) == (404, "not_found")
    assert _refused(lambda: follow_list_update(owner=outsider, list_id=shops.pk, title="x")) == (
        404,
        "not_found",
    )
    assert _refused(lambda: follow_list_delete(owner=outsider, list_id=shops.pk)) == (404, "not_found")
    assert _refused(
        lambda: follow_list_members_remove(owner=outsider, list_id=shops.pk, account_ids=[merchant.pk])
    ) == (404, "not_found")
    assert FollowList.objects.get(pk=shops.pk).title == "常去的店"
    assert follow_list_member_ids(shops.pk) == [merchant.pk]

    follow_list_delete(owner=shopper, list_id=shops.pk)
    assert not FollowList.objects.exists() and not FollowListMember.objects.exists()
    assert _refused(lambda: follow_list_delete(owner=shopper, list_id=shops.pk)) == (404, "not_found")


@pytest.mark.parametrize(
    ("title", "code"),
    [("", "title_blank"), ("   ", "title_blank"), (None, "title_blank"), ("分" * 51, "title_too_long")],
)
def test_a_blank_or_too_long_title_is_refused_and_nothing_is_made(
    shopper: Any, title: Any, code: str
) -> None:
    assert _refused(lambda: follow_list_create(owner=shopper, title=title)) == (422, code)
    assert not FollowList.objects.exists()
    kept = follow_list_create(owner=shopper, title="分" * 50)
    assert _refused(lambda: follow_list_update(owner=shopper, list_id=kept.pk, title=title or " ")) == (
        422,
        code,
    )
    assert FollowList.objects.get().title == "分" * 50


def test_an_exclusive_list_or_an_unknown_policy_is_refused(shopper: Any) -> None:
    assert _refused(lambda: follow_list_create(owner=shopper, title="a", exclusive=True)) == (
        422,
        "exclusive_not_supported",
    )
    assert _refused(lambda: follow_list_create(owner=shopper, title="a", replies_policy="all")) == (
        422,
        "invalid_replies_policy",
    )
    assert not FollowList.objects.exists()
    made = follow_list_create(owner=shopper, title="a", replies_policy="followed", exclusive=False)
    assert _refused(lambda: follow_list_update(owner=shopper, list_id=made.pk, exclusive=True)) == (
        422,
        "exclusive_not_supported",
    )
    assert FollowList.objects.get().replies_policy == "followed"


def test_the_number_of_lists_is_capped(shopper: Any, outsider: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(list_services, "LISTS_MAX", 3)
    for n in range(3):
        follow_list_create(owner=shopper, title=f"组 {n}")
    assert _refused(lambda: follow_list_create(owner=shopper, title="one more")) == (422, "list_limit")
    assert FollowList.objects.filter(owner=shopper).count() == 3
    follow_list_create(owner=outsider, title="theirs")  # the cap is each owner's own


def test_only_followed_accounts_join_and_a_refusal_adds_none(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    shops = follow_list_create(owner=shopper, title="店")
    assert _refused(
        lambda: follow_list_members_add(
            owner=shopper, list_id=shops.pk, account_ids=[merchant.pk, outsider.pk]
        )
    ) == (422, "not_following")
    assert _refused(
        lambda: follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[shopper.pk])
    ) == (422, "not_following")
    unknown = merchant.pk + outsider.pk + 1000
    assert _refused(
        lambda: follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk, unknown])
    ) == (404, "account_not_found")
    assert _refused(lambda: follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[])) == (
        422,
        "account_ids_missing",
    )
    assert _refused(
        lambda: follow_list_members_add(owner=shopper, list_id=shops.pk + 1, account_ids=[merchant.pk])
    ) == (404, "not_found")
    assert not FollowListMember.objects.exists()

    assert follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk]) == 1
    assert follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk]) == 0
    assert follow_list_member_ids(shops.pk) == [merchant.pk]
    assert [row.pk for row in follow_lists_with_account(shopper.pk, merchant.pk)] == [shops.pk]
    assert follow_lists_with_account(outsider.pk, merchant.pk) == []
    assert (
        follow_list_members_remove(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk, outsider.pk])
        == 1
    )
    assert follow_list_member_ids(shops.pk) == []


def test_the_members_of_a_list_are_capped(shopper: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(list_services, "LIST_MEMBERS_MAX", 2)
    people = [make_user(f"friend{n}") for n in range(3)]
    for person in people:
        follow_create(follower=shopper, followee_id=person.pk)
    friends = follow_list_create(owner=shopper, title="朋友")
    follow_list_members_add(owner=shopper, list_id=friends.pk, account_ids=[people[0].pk])
    assert _refused(
        lambda: follow_list_members_add(
            owner=shopper, list_id=friends.pk, account_ids=[p.pk for p in people[1:]]
        )
    ) == (422, "list_members_limit")
    assert follow_list_member_ids(friends.pk) == [people[0].pk]
    # Those already in it do not count twice.
    follow_list_members_add(owner=shopper, list_id=friends.pk, account_ids=[people[0].pk, people[1].pk])
    assert sorted(follow_list_member_ids(friends.pk)) == sorted([people[0].pk, people[1].pk])


def test_unfollowing_or_blocking_takes_an_account_out_of_the_owners_lists_only(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    for follower in (shopper, outsider):
        follow_create(follower=follower, followee_id=merchant.pk)
    follow_create(follower=shopper, followee_id=outsider.pk)
    mine = [follow_list_create(owner=shopper, title=f"组 {n}") for n in range(2)]
    for follow_list in mine:
        follow_list_members_add(owner=shopper, list_id=follow_list.pk, account_ids=[merchant.pk, outsider.pk])
    theirs = follow_list_create(owner=outsider, title="their shops")
    follow_list_members_add(owner=outsider, list_id=theirs.pk, account_ids=[merchant.pk])

    follow_delete(follower=shopper, followee_id=merchant.pk)
    assert [follow_list_member_ids(follow_list.pk) for follow_list in mine] == [[outsider.pk], [outsider.pk]]
    assert follow_list_member_ids(theirs.pk) == [merchant.pk]

    # A block either way ends the follows, and with them the memberships.
    block_create(blocker=outsider, blocked_id=shopper.pk)
    assert [follow_list_member_ids(follow_list.pk) for follow_list in mine] == [[], []]
    assert follow_list_member_ids(theirs.pk) == [merchant.pk]


def test_the_timeline_shows_the_members_posts_and_reposts_as_home_does(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    other_shop = make_user("tea_house", merchant=True)
    friend = make_user("bob")
    for followee in (merchant, other_shop, friend, outsider):
        follow_create(follower=shopper, followee_id=followee.pk)
    shops = follow_list_create(owner=shopper, title="店")
    follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk, other_shop.pk])

    offer = post_create(author=merchant, text="火锅半价")
    post_create(author=friend, text="not in the list")
    tea = post_create(author=other_shop, text="新茶", visibility="private")
    reposted = repost_create(reposter=other_shop, post_id=offer.pk)
    comment_create(author=other_shop, post_id=offer.pk, text="好吃")  # comments never enter a timeline
    gone = post_create(author=merchant, text="删掉")
    post_delete(actor=merchant, post_id=gone.pk)
    newest = post_create(author=merchant, text="明天见")

    assert _page(shopper, shops) == [newest.pk, reposted.pk, tea.pk, offer.pk]
    assert _page(shopper, shops, limit=2) == [newest.pk, reposted.pk]
    assert _page(shopper, shops, max_id=reposted.pk, limit=2) == [tea.pk, offer.pk]
    assert _page(shopper, shops, since_id=offer.pk, limit=2) == [newest.pk, reposted.pk]
    assert _page(shopper, shops, min_id=offer.pk, limit=2) == [reposted.pk, tea.pk]

    # A follow that hides the account's reposts hides them here too.
    follow_create(follower=shopper, followee_id=other_shop.pk, reblogs=False)
    assert _page(shopper, shops) == [newest.pk, tea.pk, offer.pk]


def test_the_timeline_leaves_out_hidden_accounts_and_reads_on_past_them(
    shopper: Any, merchant: Any, outsider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_timelines, "READ_SLACK", 0)
    for followee in (merchant, outsider):
        follow_create(follower=shopper, followee_id=followee.pk)
    shops = follow_list_create(owner=shopper, title="店")
    follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk, outsider.pk])
    stranger = make_user("spammer")
    first = post_create(author=merchant, text="第一")
    spam = [post_create(author=stranger, text=f"广告 {n}") for n in range(4)]
    forwarded = [repost_create(reposter=merchant, post_id=post.pk) for post in spam]
    mine = post_create(author=outsider, text="charlie's")
    assert _page(shopper, shops, limit=2) == [mine.pk, forwarded[-1].pk]

    mute_create(muter=shopper, muted_id=stranger.pk)
    hidden = frozenset({stranger.pk})
    # The reposts of the muted account are dropped, and the page reads on to fill up.
    assert list_timeline_ids(shopper.pk, shops.pk, hidden=hidden, limit=2) == [mine.pk, first.pk]
    assert list_timeline_ids(shopper.pk, shops.pk, hidden=hidden | {outsider.pk}, limit=2) == [first.pk]


def test_a_list_of_many_members_reads_one_walk_per_member(
    shopper: Any, django_assert_max_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(list_timelines, "SQLITE_MEMBERS_PER_STATEMENT", 3)
    people = [make_user(f"shop{n}") for n in range(7)]
    for person in people:
        follow_create(follower=shopper, followee_id=person.pk)
    posts = [post_create(author=person, text=f"post of {person.username}") for person in people]
    big = follow_list_create(owner=shopper, title="all")
    follow_list_members_add(owner=shopper, list_id=big.pk, account_ids=[p.pk for p in people])
    with django_assert_max_num_queries(4):
        page = _page(shopper, big, limit=5)
    assert page == [post.pk for post in reversed(posts)][:5]
