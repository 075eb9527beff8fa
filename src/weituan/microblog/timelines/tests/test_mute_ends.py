"""A mute with an end (Mastodon's `duration`) in the timelines: it hides the account while it lasts and
nothing once it has ended, without the sweep having run; the stored timeline keeps the account's posts
meanwhile, so they are all back when it ends."""

from typing import Any

import pytest

from weituan.accounts.tokens import access_token_issue
from weituan.microblog.models import Mute
from weituan.microblog.services.relations import mute_create, mutes_expired_delete
from weituan.microblog.timelines.home import read_context, token_read_context
from weituan.microblog.timelines.queries import home_timeline_ids, public_timeline_ids, topic_timeline_ids

pytestmark = pytest.mark.django_db


def test_a_mute_with_an_end_hides_until_it_ends_and_the_posts_are_back_without_the_sweep(
    backend: str,
    merchant: Any,
    shopper: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    stored: Any,
    run_on_commit: Any,
    clock: Any,
) -> None:
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    before = post_as(merchant, "一 #双十一#")
    with run_on_commit():
        assert mute_create(muter=shopper, muted_id=merchant.pk, duration=60) is True
    during = post_as(merchant, "二 #双十一#")
    # Delivered all the same, and dropped at read while the mute lasts.
    assert stored(shopper) == [during.id, before.id]
    assert home_timeline_ids(shopper.pk) == []
    assert public_timeline_ids(viewer_id=shopper.pk) == []
    assert topic_timeline_ids("双十一", viewer_id=shopper.pk) == []
    assert topic_timeline_ids("双十一", viewer_id=outsider.pk) == [during.id, before.id]

    clock.forward(59)
    assert home_timeline_ids(shopper.pk) == []
    clock.forward(2)
    assert Mute.objects.filter(muter=shopper).count() == 1  # not swept: reads alone ignore it
    assert read_context(shopper.pk).hidden == frozenset()
    assert home_timeline_ids(shopper.pk) == [during.id, before.id]
    assert public_timeline_ids(viewer_id=shopper.pk) == [during.id, before.id]
    assert topic_timeline_ids("双十一", viewer_id=shopper.pk) == [during.id, before.id]
    after = post_as(merchant, "三")
    assert home_timeline_ids(shopper.pk) == [after.id, during.id, before.id]

    assert mutes_expired_delete() == 1
    assert not Mute.objects.exists()
    assert home_timeline_ids(shopper.pk) == [after.id, during.id, before.id]


def test_a_timeline_rebuilt_during_a_mute_with_an_end_keeps_the_account_for_when_it_ends(
    backend: str, merchant: Any, shopper: Any, follow: Any, post_as: Any, stored: Any, clock: Any
) -> None:
    follow(shopper, merchant)
    posted = post_as(merchant, "一")
    mute_create(muter=shopper, muted_id=merchant.pk, duration=3600)
    context = read_context(shopper.pk)
    assert (context.hidden, context.muted_for_now) == ({merchant.pk}, {merchant.pk})
    raw, _ = access_token_issue(user=shopper)
    reader = token_read_context(raw)
    assert reader is not None
    assert reader.context._replace(stamp_due=False) == context._replace(stamp_due=False)
    assert home_timeline_ids(shopper.pk) == []  # the first read builds the timeline
    assert stored(shopper) == [posted.id]
    clock.forward(3601)
    assert home_timeline_ids(shopper.pk) == [posted.id]


def test_muting_again_turns_one_kind_of_mute_into_the_other(
    backend: str,
    merchant: Any,
    shopper: Any,
    follow: Any,
    post_as: Any,
    stored: Any,
    run_on_commit: Any,
    clock: Any,
) -> None:
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    first = post_as(merchant, "一")
    with run_on_commit():
        mute_create(muter=shopper, muted_id=merchant.pk)
    second = post_as(merchant, "二")
    assert stored(shopper) == []  # a mute without an end takes them out, and stops delivery
    # With an end now: the posts go back into the stored timeline, still hidden while it lasts.
    with run_on_commit():
        assert mute_create(muter=shopper, muted_id=merchant.pk, duration=60) is False
    assert stored(shopper) == [second.id, first.id]
    assert home_timeline_ids(shopper.pk) == []
    # Without an end again: out once more, and its end is gone.
    with run_on_commit():
        mute_create(muter=shopper, muted_id=merchant.pk, duration=0)
    assert stored(shopper) == []
    clock.forward(120)
    assert home_timeline_ids(shopper.pk) == []


def test_a_high_follower_author_muted_for_now_is_merged_again_once_the_mute_ends(
    backend: str,
    merchant: Any,
    shopper: Any,
    follow: Any,
    post_as: Any,
    settings: Any,
    clock: Any,
) -> None:
    settings.FANOUT_FOLLOWER_THRESHOLD = 0  # the merchant's posts are merged in at read, not fanned out
    follow(shopper, merchant)
    posted = post_as(merchant, "一")
    assert home_timeline_ids(shopper.pk) == [posted.id]
    mute_create(muter=shopper, muted_id=merchant.pk, duration=60)
    assert read_context(shopper.pk).merged_authors == ()
    assert home_timeline_ids(shopper.pk) == []
    clock.forward(61)
    assert read_context(shopper.pk).merged_authors == (merchant.pk,)
    assert home_timeline_ids(shopper.pk) == [posted.id]
