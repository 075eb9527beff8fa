"""Whether a follow shows the followee's reposts (Mastodon's `reblogs`): set on a new follow or request,
changed by following again, carried from a request to the follow, and told by the relationship."""

from typing import Any

import pytest

from weituan.microblog.models import Follow, FollowRequest, Notification
from weituan.microblog.queries.relations import relationships
from weituan.microblog.services.relations import (
    account_lock_set,
    follow_create,
    follow_delete,
    follow_request_authorize,
)
from weituan.microblog.stats import account_counts

pytestmark = pytest.mark.django_db


def showing(viewer: Any, other: Any) -> tuple[bool, bool, bool]:
    found = relationships(viewer.pk, [other.pk])[0]
    return found["following"], found["requested"], found["showing_reblogs"]


def test_the_flag_is_set_changed_and_told(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    assert showing(shopper, merchant) == (False, False, False)
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk, reblogs=False) is True
    assert showing(shopper, merchant) == (True, False, False)
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk) is False
    assert showing(shopper, merchant) == (True, False, False)  # not said: left as it was
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk, reblogs=True) is False
    assert showing(shopper, merchant) == (True, False, True)
    # Changing the flag is not a new follow: counted and notified once.
    assert account_counts([merchant.pk])[merchant.pk].followers == 1
    assert Notification.objects.filter(recipient=merchant, kind="follow").count() == 1
    with run_on_commit():
        follow_delete(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=shopper, followee_id=merchant.pk)
    assert showing(shopper, merchant) == (True, False, True)  # a new follow shows them


def test_a_request_keeps_the_flag_for_the_follow(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    merchant.locked = True
    merchant.save(update_fields=["locked"])
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, reblogs=False)
        follow_create(follower=outsider, followee_id=merchant.pk)
    assert showing(shopper, merchant) == (False, True, False)
    assert showing(outsider, merchant) == (False, True, True)
    with run_on_commit():
        follow_create(follower=outsider, followee_id=merchant.pk, reblogs=False)  # changes the request
    assert FollowRequest.objects.filter(target=merchant).count() == 2
    assert showing(outsider, merchant) == (False, True, False)
    with run_on_commit():
        follow_request_authorize(owner=merchant, requester_id=shopper.pk)
        follow_create(follower=outsider, followee_id=merchant.pk, reblogs=True)
        account_lock_set(owner=merchant, locked=False)  # accepts the outsider's request
    assert showing(shopper, merchant) == (True, False, False)
    assert showing(outsider, merchant) == (True, False, True)
    assert set(Follow.objects.values_list("follower_id", "show_reblogs")) == {
        (shopper.pk, False),
        (outsider.pk, True),
    }
