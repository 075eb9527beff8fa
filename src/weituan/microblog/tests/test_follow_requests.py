"""Locked accounts approve their followers: requests, authorize and reject, unlocking, and what the
requester may see before approval."""

from collections.abc import Callable
from typing import Any

import pytest

from weituan.core.errors import NotFound
from weituan.microblog.models import Follow, FollowRequest, Notification
from weituan.microblog.queries.relations import (
    follow_requests_count,
    follow_requests_page,
    relationships,
)
from weituan.microblog.services.posts import post_create
from weituan.microblog.services.relations import (
    account_lock_set,
    block_create,
    follow_create,
    follow_delete,
    follow_request_authorize,
    follow_request_reject,
)
from weituan.microblog.stats import account_counts
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db


def lock(user: Any) -> None:
    user.locked = True
    user.save(update_fields=["locked"])


def state() -> tuple[Any, ...]:
    return (
        sorted(Follow.objects.values_list("follower_id", "followee_id")),
        sorted(FollowRequest.objects.values_list("requester_id", "target_id")),
        sorted(Notification.objects.values_list("recipient_id", "actor_id", "kind")),
    )


def test_following_a_locked_account_makes_a_request(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    lock(merchant)
    with run_on_commit():
        post_create(author=merchant, text="只给粉丝看")
        assert follow_create(follower=shopper, followee_id=merchant.pk) is True
        assert follow_create(follower=shopper, followee_id=merchant.pk) is False  # already waiting
    assert state() == ([], [(shopper.pk, merchant.pk)], [(merchant.pk, shopper.pk, "follow_request")])
    (relation,) = relationships(shopper.pk, [merchant.pk])
    assert (relation["following"], relation["requested"], relation["requested_by"]) == (False, True, False)
    (seen_by_owner,) = relationships(merchant.pk, [shopper.pk])
    assert (seen_by_owner["followed_by"], seen_by_owner["requested_by"]) == (False, True)
    assert [row.user_id for row in follow_requests_page(merchant.pk)] == [shopper.pk]
    assert follow_requests_count(merchant.pk) == 1
    # Nothing of the owner's reaches the requester before approval, and no counter moved.
    assert home_timeline_ids(shopper.pk) == []
    counted = account_counts([shopper.pk, merchant.pk])
    assert (counted[shopper.pk].following, counted[merchant.pk].followers) == (0, 0)


def test_authorizing_turns_the_request_into_a_follow(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    lock(merchant)
    with run_on_commit():
        post = post_create(author=merchant, text="欢迎新粉丝")
        follow_create(follower=shopper, followee_id=merchant.pk)
    with run_on_commit():
        assert follow_request_authorize(owner=merchant, requester_id=shopper.pk) is True
    assert state() == (
        [(shopper.pk, merchant.pk)],
        [],
        [(merchant.pk, shopper.pk, "follow"), (merchant.pk, shopper.pk, "follow_request")],
    )
    assert home_timeline_ids(shopper.pk) == [post.id]
    counted = account_counts([shopper.pk, merchant.pk])
    assert (counted[shopper.pk].following, counted[merchant.pk].followers) == (1, 1)
    (relation,) = relationships(shopper.pk, [merchant.pk])
    assert (relation["following"], relation["requested"]) == (True, False)
    # A second answer finds nothing to answer and changes nothing.
    before = state()
    with pytest.raises(NotFound) as missing:
        follow_request_authorize(owner=merchant, requester_id=shopper.pk)
    assert missing.value.code == "follow_request_not_found"
    assert state() == before


def test_rejecting_and_withdrawing_leave_no_follow(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    lock(merchant)
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=outsider, followee_id=merchant.pk)
        assert follow_request_reject(owner=merchant, requester_id=shopper.pk) is True
        follow_delete(follower=outsider, followee_id=merchant.pk)
    assert state()[:2] == ([], [])
    # Someone who never asked cannot be approved, and the owner cannot approve on another's behalf.
    with pytest.raises(NotFound):
        follow_request_authorize(owner=merchant, requester_id=shopper.pk)
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
    with pytest.raises(NotFound):
        follow_request_authorize(owner=outsider, requester_id=shopper.pk)
    assert state()[:2] == ([], [(shopper.pk, merchant.pk)])


def test_a_block_removes_pending_requests_both_ways(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    lock(merchant)
    lock(shopper)
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=merchant, followee_id=shopper.pk)
        block_create(blocker=merchant, blocked_id=shopper.pk)
    assert FollowRequest.objects.count() == 0


def test_unlocking_accepts_every_pending_request(
    shopper: Any, merchant: Any, outsider: Any, operator: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        assert account_lock_set(owner=merchant, locked=True) == 0
        post = post_create(author=merchant, text="解锁前的帖子")
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=outsider, followee_id=merchant.pk)
        follow_request_reject(owner=merchant, requester_id=outsider.pk)
        follow_create(follower=operator, followee_id=merchant.pk)
    assert FollowRequest.objects.count() == 2
    with run_on_commit():
        assert account_lock_set(owner=merchant, locked=False) == 2
    merchant.refresh_from_db()
    assert merchant.locked is False
    assert sorted(Follow.objects.values_list("follower_id", flat=True)) == sorted([shopper.pk, operator.pk])
    assert FollowRequest.objects.count() == 0
    assert account_counts([merchant.pk])[merchant.pk].followers == 2
    assert home_timeline_ids(shopper.pk) == [post.id]
    # Unlocked, a follow is a follow at once.
    with run_on_commit():
        follow_create(follower=outsider, followee_id=merchant.pk)
    assert Follow.objects.filter(follower=outsider, followee=merchant).exists()
    # Locking again leaves existing followers alone.
    assert account_lock_set(owner=merchant, locked=True) == 0
    assert Follow.objects.filter(followee=merchant).count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_follows_racing_an_unlock_leave_nothing_pending() -> None:
    from weituan.core.testing import make_user
    from weituan.microblog.models import AccountStats
    from weituan.microblog.tests.test_relations_concurrency import run_threads

    owner = make_user("locked_shop")
    lock(owner)
    fans = [make_user(f"asker{index}") for index in range(10)]

    def follower(fan: Any) -> Callable[[], None]:
        def job() -> None:
            follow_create(follower=fan, followee_id=owner.pk)

        return job

    def unlock() -> None:
        account_lock_set(owner=owner, locked=False)

    jobs = [follower(fan) for fan in fans] + [unlock]
    assert run_threads(jobs) == []
    # Whichever way each follow fell, it is a follow now: none waits on an unlocked account.
    assert FollowRequest.objects.count() == 0
    assert sorted(Follow.objects.filter(followee=owner).values_list("follower_id", flat=True)) == sorted(
        fan.pk for fan in fans
    )
    stats = AccountStats.objects.get(user=owner)
    assert stats.followers_count == 10
