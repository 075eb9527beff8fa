"""Mastodon's two mute options: `notifications` (hide the account's notifications too, or not) and
`duration` (the mute ends by itself). Muting again sets both anew; a mute that has ended hides nothing
anywhere (relations, search, repost trees, notifications), before the sweep deletes it or after."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from weituan.core.errors import ValidationFailed
from weituan.microblog.models import Mute, Notification, NotificationKind
from weituan.microblog.queries.notifications import notifications_page, notifications_unread_count
from weituan.microblog.queries.relations import (
    hidden_author_ids,
    hiding_relations,
    muted_ids,
    mutes_page,
    notification_hidden_actor_ids,
    relationships,
)
from weituan.microblog.queries.reposts import repost_tree
from weituan.microblog.search.queries import posts_search
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import (
    MUTE_DURATION_MAX,
    follow_create,
    mute_create,
    mute_delete,
    mutes_expired_delete,
)

pytestmark = pytest.mark.django_db

EXPIRY_TASK = "weituan.microblog.timelines.tasks.mutes_expired_delete_task"


def mute_row(muter: Any, muted: Any) -> tuple[bool, Any] | None:
    row = (
        Mute.objects.filter(muter=muter, muted=muted).values_list("hide_notifications", "expires_at").first()
    )
    return None if row is None else (row[0], row[1])


def flags(viewer: Any, other: Any) -> tuple[bool, bool]:
    (found,) = relationships(viewer.pk, [other.pk])
    return found["muting"], found["muting_notifications"]


def test_muting_again_sets_both_options_anew_and_unmuting_removes_the_row(
    shopper: Any, merchant: Any, clock: Any
) -> None:
    assert mute_create(muter=shopper, muted_id=merchant.pk, notifications=False, duration=60) is True
    ends = timezone.now() + timedelta(seconds=60)
    hides, expires_at = mute_row(shopper, merchant) or (None, None)
    assert hides is False
    assert expires_at is not None and abs(expires_at - ends) < timedelta(seconds=5)
    assert flags(shopper, merchant) == (True, False)

    assert mute_create(muter=shopper, muted_id=merchant.pk) is False  # already muted: updated
    assert mute_row(shopper, merchant) == (True, None)
    assert flags(shopper, merchant) == (True, True)
    assert Mute.objects.count() == 1

    assert mute_delete(muter=shopper, muted_id=merchant.pk) is True
    assert mute_row(shopper, merchant) is None
    assert flags(shopper, merchant) == (False, False)


def test_muting_again_after_the_end_counts_as_a_new_mute(shopper: Any, merchant: Any, clock: Any) -> None:
    mute_create(muter=shopper, muted_id=merchant.pk, duration=10)
    clock.forward(11)
    assert flags(shopper, merchant) == (False, False)
    assert mute_create(muter=shopper, muted_id=merchant.pk, duration=10) is True
    assert flags(shopper, merchant) == (True, True)


@pytest.mark.parametrize("duration", [-1, MUTE_DURATION_MAX + 1])
def test_a_duration_out_of_range_is_refused_and_changes_nothing(
    shopper: Any, merchant: Any, duration: int
) -> None:
    mute_create(muter=shopper, muted_id=merchant.pk, notifications=False)
    with pytest.raises(ValidationFailed) as refused:
        mute_create(muter=shopper, muted_id=merchant.pk, duration=duration)
    assert (refused.value.code, refused.value.status) == ("invalid_duration", 422)
    assert mute_row(shopper, merchant) == (False, None)


def test_an_ended_mute_hides_nothing_in_relations_search_and_trees(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any, clock: Any
) -> None:
    with run_on_commit():
        original = post_create(author=outsider, text="牛肉面买一送一")
        forward = repost_create(reposter=merchant, post_id=original.id, comment="划算的牛肉面")
    mute_create(muter=shopper, muted_id=merchant.pk, duration=60)
    mute_create(muter=outsider, muted_id=merchant.pk)  # without an end: stays
    assert (muted_ids(shopper.pk), hidden_author_ids(shopper.pk)) == ({merchant.pk}, {merchant.pk})
    assert hiding_relations(shopper.pk, [merchant.pk, outsider.pk]) == {merchant.pk: "muting"}
    assert [row.user_id for row in mutes_page(shopper.pk)] == [merchant.pk]
    assert posts_search(query="牛肉面", viewer=shopper) == [original.id]
    assert [node.id for node in repost_tree(original.id, shopper).nodes] == [original.id]

    clock.forward(61)
    assert (muted_ids(shopper.pk), hidden_author_ids(shopper.pk)) == (set(), set())
    assert hiding_relations(shopper.pk, [merchant.pk]) == {}
    assert mutes_page(shopper.pk) == []
    assert posts_search(query="牛肉面", viewer=shopper) == [forward.id, original.id]
    assert [node.id for node in repost_tree(original.id, shopper).nodes] == [original.id, forward.id]
    assert flags(shopper, merchant) == (False, False)
    # The mute without an end still hides.
    assert hidden_author_ids(outsider.pk) == {merchant.pk}
    assert posts_search(query="牛肉面", viewer=outsider) == [original.id]


def test_the_sweep_deletes_only_the_mutes_that_ended(
    shopper: Any, merchant: Any, outsider: Any, operator: Any, clock: Any
) -> None:
    mute_create(muter=shopper, muted_id=merchant.pk, duration=60)
    mute_create(muter=shopper, muted_id=outsider.pk, duration=600)
    mute_create(muter=shopper, muted_id=operator.pk)
    assert mutes_expired_delete() == 0
    clock.forward(61)
    assert mutes_expired_delete() == 1
    assert sorted(Mute.objects.values_list("muted_id", flat=True)) == sorted([outsider.pk, operator.pk])
    assert EXPIRY_TASK in [path for path, _ in settings.PERIODIC_TASKS]


def test_a_mute_hiding_notifications_stops_them_and_hides_the_earlier_ones_until_it_ends(
    shopper: Any, merchant: Any, clock: Any
) -> None:
    post_create(author=merchant, text="@alice 你好")  # before the mute
    assert notifications_unread_count(shopper) == 1
    mute_create(muter=shopper, muted_id=merchant.pk, duration=60)
    assert notification_hidden_actor_ids(shopper.pk) == {merchant.pk}
    post_create(author=merchant, text="@alice 在吗")  # not told
    follow_create(follower=merchant, followee_id=shopper.pk)  # not told
    assert Notification.objects.filter(recipient=shopper).count() == 1
    assert notifications_page(shopper) == []
    assert notifications_unread_count(shopper) == 0

    clock.forward(61)
    assert notification_hidden_actor_ids(shopper.pk) == set()
    assert [row.kind for row in notifications_page(shopper)] == [NotificationKind.MENTION]
    assert notifications_unread_count(shopper) == 1


def test_a_mute_keeping_notifications_lets_them_through(
    shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
    mute_create(muter=shopper, muted_id=merchant.pk, notifications=False)
    assert hidden_author_ids(shopper.pk) == {merchant.pk}  # their posts are still hidden
    assert notification_hidden_actor_ids(shopper.pk) == set()
    with run_on_commit():
        post_create(author=merchant, text="@alice 你好")
        follow_create(follower=merchant, followee_id=shopper.pk)
    kinds = sorted(row.kind for row in notifications_page(shopper))
    assert kinds == sorted([NotificationKind.MENTION, NotificationKind.FOLLOW, NotificationKind.STATUS])
    assert notifications_unread_count(shopper) == 3
    # Muting again with the default hides them all again, the ones already there included.
    mute_create(muter=shopper, muted_id=merchant.pk)
    assert notifications_page(shopper) == []
    assert notifications_unread_count(shopper) == 0
