"""Follow, block and mute rules: counters, notifications, refusals that change nothing."""

from typing import Any

import pytest

from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.microblog.models import AccountStats, Block, Follow, Mute, Notification
from weituan.microblog.queries.relations import (
    blocked_ids,
    followers_page,
    following_page,
    hidden_author_ids,
    is_blocked_between,
    muted_ids,
    relationships,
)
from weituan.microblog.services.relations import (
    block_create,
    block_delete,
    follow_create,
    follow_delete,
    mute_create,
    mute_delete,
)
from weituan.microblog.stats import account_counts

pytestmark = pytest.mark.django_db


def counts(user: Any) -> tuple[int, int]:
    found = account_counts([user.pk])[user.pk]
    return found.followers, found.following


def world_snapshot() -> tuple[Any, ...]:
    return (
        sorted(Follow.objects.values_list("follower_id", "followee_id")),
        sorted(Block.objects.values_list("blocker_id", "blocked_id")),
        sorted(Mute.objects.values_list("muter_id", "muted_id")),
        sorted(AccountStats.objects.values_list("user_id", "followers_count", "following_count")),
        Notification.objects.count(),
    )


def test_follow_counts_notifies_and_is_idempotent(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk) is True
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk) is False
    assert counts(shopper) == (0, 1)
    assert counts(merchant) == (1, 0)
    notes = list(Notification.objects.values_list("recipient_id", "actor_id", "kind"))
    assert notes == [(merchant.pk, shopper.pk, "follow")]


def test_unfollow_fixes_counters_once(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        assert follow_delete(follower=shopper, followee_id=merchant.pk) is True
        assert follow_delete(follower=shopper, followee_id=merchant.pk) is False
    assert counts(shopper) == (0, 0)
    assert counts(merchant) == (0, 0)
    assert not Follow.objects.exists()


def test_follow_self_is_refused_and_changes_nothing(shopper: Any) -> None:
    before = world_snapshot()
    with pytest.raises(ValidationFailed) as caught:
        follow_create(follower=shopper, followee_id=shopper.pk)
    assert caught.value.code == "cannot_follow_self"
    assert world_snapshot() == before


def test_follow_unknown_account_is_not_found(shopper: Any) -> None:
    before = world_snapshot()
    with pytest.raises(NotFound) as caught:
        follow_create(follower=shopper, followee_id=987654321)
    assert caught.value.code == "not_found"
    assert world_snapshot() == before


@pytest.mark.parametrize("direction", ["they_blocked_me", "i_blocked_them"])
def test_follow_across_a_block_is_refused(
    shopper: Any, merchant: Any, direction: str, run_on_commit: Any
) -> None:
    with run_on_commit():
        if direction == "they_blocked_me":
            block_create(blocker=merchant, blocked_id=shopper.pk)
        else:
            block_create(blocker=shopper, blocked_id=merchant.pk)
    before = world_snapshot()
    with pytest.raises(PermissionDenied) as caught:
        follow_create(follower=shopper, followee_id=merchant.pk)
    assert caught.value.code == "blocked"
    assert world_snapshot() == before


def test_block_removes_follows_both_ways_with_counters(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=merchant, followee_id=shopper.pk)
        follow_create(follower=outsider, followee_id=merchant.pk)
        assert block_create(blocker=merchant, blocked_id=shopper.pk) is True
        assert block_create(blocker=merchant, blocked_id=shopper.pk) is False
    assert sorted(Follow.objects.values_list("follower_id", "followee_id")) == [(outsider.pk, merchant.pk)]
    assert counts(shopper) == (0, 0)
    assert counts(merchant) == (1, 0)
    assert is_blocked_between(shopper.pk, merchant.pk)
    assert is_blocked_between(merchant.pk, shopper.pk)
    assert blocked_ids(merchant.pk) == {shopper.pk}
    assert hidden_author_ids(shopper.pk) == {merchant.pk}
    assert hidden_author_ids(merchant.pk) == {shopper.pk}
    with run_on_commit():
        assert block_delete(blocker=merchant, blocked_id=shopper.pk) is True
        assert block_delete(blocker=merchant, blocked_id=shopper.pk) is False
    assert not is_blocked_between(shopper.pk, merchant.pk)
    assert not Follow.objects.filter(follower=shopper).exists()


def test_block_and_mute_self_are_refused(shopper: Any) -> None:
    before = world_snapshot()
    with pytest.raises(ValidationFailed) as blocked:
        block_create(blocker=shopper, blocked_id=shopper.pk)
    with pytest.raises(ValidationFailed) as muted:
        mute_create(muter=shopper, muted_id=shopper.pk)
    assert (blocked.value.code, muted.value.code) == ("cannot_block_self", "cannot_mute_self")
    assert world_snapshot() == before


def test_mute_is_one_sided_and_keeps_the_follow(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        assert mute_create(muter=shopper, muted_id=merchant.pk) is True
        assert mute_create(muter=shopper, muted_id=merchant.pk) is False
    assert muted_ids(shopper.pk) == {merchant.pk}
    assert hidden_author_ids(shopper.pk) == {merchant.pk}
    assert hidden_author_ids(merchant.pk) == set()
    assert counts(merchant) == (1, 0)
    with run_on_commit():
        assert mute_delete(muter=shopper, muted_id=merchant.pk) is True
        assert mute_delete(muter=shopper, muted_id=merchant.pk) is False
    assert muted_ids(shopper.pk) == set()


def test_lists_page_by_relation_id(
    shopper: Any, merchant: Any, outsider: Any, operator: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        for user in (shopper, outsider, operator):
            follow_create(follower=user, followee_id=merchant.pk)
    rows = followers_page(merchant.pk, limit=2)
    assert [row.user_id for row in rows] == [operator.pk, outsider.pk]
    older = followers_page(merchant.pk, max_id=rows[-1].cursor, limit=2)
    assert [row.user_id for row in older] == [shopper.pk]
    newer = followers_page(merchant.pk, min_id=older[0].cursor, limit=1)
    assert [row.user_id for row in newer] == [outsider.pk]
    since = followers_page(merchant.pk, since_id=older[0].cursor, limit=1)
    assert [row.user_id for row in since] == [operator.pk]
    assert [row.user_id for row in following_page(shopper.pk)] == [merchant.pk]


def test_relationships_shape(shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=merchant, followee_id=shopper.pk)
        mute_create(muter=shopper, muted_id=merchant.pk)
        block_create(blocker=outsider, blocked_id=shopper.pk)
    first, second = relationships(shopper.pk, [merchant.pk, outsider.pk])
    assert first == {
        "id": str(merchant.pk),
        "following": True,
        "showing_reblogs": True,
        "notifying": False,
        "languages": None,
        "followed_by": True,
        "blocking": False,
        "blocked_by": False,
        "muting": True,
        "muting_notifications": True,
        "requested": False,
        "requested_by": False,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }
    assert (second["id"], second["following"], second["blocked_by"], second["blocking"]) == (
        str(outsider.pk),
        False,
        True,
        False,
    )
