"""Home timeline reads: paging, follow backfill, unfollow, block and mute hiding; user/topic/public timelines."""

from typing import Any

import pytest

from weituan.microblog.services.relations import block_create, follow_delete, mute_create, mute_delete
from weituan.microblog.timelines.models import TimelineState
from weituan.microblog.timelines.queries import (
    home_timeline_ids,
    public_timeline_ids,
    topic_timeline_ids,
    user_timeline_ids,
)

pytestmark = pytest.mark.django_db


def test_paging_by_max_since_and_min_id(
    backend: str, merchant: Any, shopper: Any, follow: Any, post_as: Any
) -> None:
    follow(shopper, merchant)
    home_timeline_ids(shopper.pk)
    ids = [post_as(merchant, f"p{index}").id for index in range(7)][::-1]  # newest first
    assert home_timeline_ids(shopper.pk, limit=3) == ids[:3]
    assert home_timeline_ids(shopper.pk, max_id=ids[2], limit=3) == ids[3:6]
    assert home_timeline_ids(shopper.pk, max_id=ids[5], limit=3) == ids[6:]
    assert home_timeline_ids(shopper.pk, since_id=ids[4], limit=2) == ids[:2]
    assert home_timeline_ids(shopper.pk, min_id=ids[4], limit=2) == ids[2:4]
    assert home_timeline_ids(shopper.pk, max_id=ids[0], since_id=ids[3]) == ids[1:3]
    assert home_timeline_ids(shopper.pk, max_id=ids[-1]) == []


def test_follow_backfills_and_unfollow_removes(
    backend: str,
    merchant: Any,
    shopper: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
    run_on_commit: Any,
) -> None:
    home_timeline_ids(shopper.pk)
    first = post_as(merchant, "早")
    second = post_as(merchant, "晚")
    follow(outsider, merchant)
    repost = repost_as(outsider, first, "转")
    assert stored(shopper) == []
    follow(shopper, merchant)
    assert stored(shopper) == [second.id, first.id]
    follow(shopper, outsider)
    assert stored(shopper) == [repost.id, second.id, first.id]
    with run_on_commit():
        follow_delete(follower=shopper, followee_id=merchant.pk)
    # The merchant's own posts leave; the outsider's repost of one stays.
    assert stored(shopper) == [repost.id]
    assert home_timeline_ids(shopper.pk) == [repost.id]


def test_block_hides_both_ways_including_reposts(
    backend: str,
    merchant: Any,
    shopper: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    repost_as: Any,
    stored: Any,
    run_on_commit: Any,
) -> None:
    follow(shopper, merchant)
    follow(merchant, shopper)
    follow(shopper, outsider)
    home_timeline_ids(shopper.pk)
    home_timeline_ids(merchant.pk)
    theirs = post_as(merchant, "商家")
    mine = post_as(shopper, "我的")
    forwarded = repost_as(outsider, theirs, "转发")
    assert home_timeline_ids(shopper.pk) == [forwarded.id, mine.id, theirs.id]
    with run_on_commit():
        block_create(blocker=merchant, blocked_id=shopper.pk)
    assert stored(shopper) == [mine.id]
    assert stored(merchant) == [theirs.id]
    assert home_timeline_ids(shopper.pk) == [mine.id]
    assert home_timeline_ids(merchant.pk) == [theirs.id]
    # Even a rebuild from scratch, and a later repost, keep the blocked side out.
    TimelineState.objects.filter(user_id=shopper.pk).update(built_at=None)
    again = repost_as(outsider, theirs, "再转")
    assert home_timeline_ids(shopper.pk) == [mine.id]
    assert again.id not in stored(shopper)
    assert user_timeline_ids(merchant.pk, viewer_id=shopper.pk) == []
    assert public_timeline_ids(viewer_id=shopper.pk) == [mine.id]


def test_mute_hides_for_the_muter_only_and_unmute_restores(
    backend: str,
    merchant: Any,
    shopper: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    stored: Any,
    run_on_commit: Any,
) -> None:
    follow(shopper, merchant)
    follow(outsider, merchant)
    home_timeline_ids(shopper.pk)
    home_timeline_ids(outsider.pk)
    before = post_as(merchant, "一")
    with run_on_commit():
        mute_create(muter=shopper, muted_id=merchant.pk)
    during = post_as(merchant, "二")
    assert stored(shopper) == []
    assert home_timeline_ids(shopper.pk) == []
    assert home_timeline_ids(outsider.pk) == [during.id, before.id]
    assert public_timeline_ids(viewer_id=shopper.pk) == []
    with run_on_commit():
        mute_delete(muter=shopper, muted_id=merchant.pk)
    assert home_timeline_ids(shopper.pk) == [during.id, before.id]


def test_user_timeline_rules(
    merchant: Any, shopper: Any, outsider: Any, follow: Any, post_as: Any, repost_as: Any, run_on_commit: Any
) -> None:
    follow(shopper, merchant)
    public = post_as(merchant, "公开")
    private = post_as(merchant, "粉丝可见", visibility="private")
    own = post_as(shopper, "原创")
    forward = repost_as(shopper, public)
    assert user_timeline_ids(merchant.pk, viewer_id=shopper.pk) == [private.id, public.id]
    assert user_timeline_ids(merchant.pk, viewer_id=outsider.pk) == [public.id]
    assert user_timeline_ids(merchant.pk, viewer_id=None) == [public.id]
    assert user_timeline_ids(merchant.pk, viewer_id=merchant.pk) == [private.id, public.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None) == [forward.id, own.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, exclude_reblogs=True) == [own.id]
    assert user_timeline_ids(shopper.pk, viewer_id=None, max_id=forward.id) == [own.id]


def test_topic_and_public_timelines(merchant: Any, shopper: Any, post_as: Any, repost_as: Any) -> None:
    tagged = post_as(merchant, "今天 #双十一# 开抢")
    other = post_as(shopper, "#Deal and more")
    plain_forward = repost_as(shopper, tagged)
    quote = repost_as(shopper, tagged, "冲 #双十一#")
    post_as(merchant, "粉丝 #双十一#", visibility="private")
    assert topic_timeline_ids("双十一", viewer_id=None) == [quote.id, tagged.id]
    assert topic_timeline_ids("deal", viewer_id=shopper.pk) == [other.id]
    assert topic_timeline_ids("双十一", viewer_id=None, max_id=quote.id) == [tagged.id]
    assert topic_timeline_ids("没有", viewer_id=None) == []
    public = public_timeline_ids(viewer_id=None)
    assert plain_forward.id not in public
    assert public == [quote.id, other.id, tagged.id]
    assert public_timeline_ids(viewer_id=None, since_id=other.id) == [quote.id]


@pytest.mark.parametrize("hidden_count", [11, 45])
def test_a_page_reads_on_past_entries_hidden_since_delivery(
    backend: str,
    merchant: Any,
    shopper: Any,
    outsider: Any,
    follow: Any,
    post_as: Any,
    stored: Any,
    run_on_commit: Any,
    hidden_count: int,
) -> None:
    """Entries of a muted author still in the stored timeline (delivered while the mute was being
    made) are skipped without cutting the page short or ending the paging early."""
    from weituan.microblog.timelines.store import Entry, timeline_store

    follow(shopper, merchant)
    follow(shopper, outsider)
    home_timeline_ids(shopper.pk)
    older = [post_as(outsider, f"旧{index}").id for index in range(4)]
    muted = [post_as(merchant, f"静音{index}").id for index in range(hidden_count)]
    newer = [post_as(outsider, f"新{index}").id for index in range(2)]
    with run_on_commit():
        mute_create(muter=shopper, muted_id=merchant.pk)
    # As if fan-out delivered them after the mute had cleared the timeline.
    timeline_store().add(shopper.pk, [Entry(post_id, merchant.pk, merchant.pk) for post_id in muted])
    assert set(muted) <= set(stored(shopper))
    visible = newer[::-1] + older[::-1]
    assert home_timeline_ids(shopper.pk, limit=5) == visible[:5]
    assert home_timeline_ids(shopper.pk, max_id=visible[4], limit=5) == visible[5:]
    assert home_timeline_ids(shopper.pk, min_id=older[0], limit=4) == visible[1:5]
    assert home_timeline_ids(shopper.pk, since_id=older[1], limit=3) == visible[:3]


@pytest.mark.parametrize("ascending", [False, True])
def test_a_page_read_on_keeps_merged_authors_in_order(
    backend: str,
    settings: Any,
    shopper: Any,
    outsider: Any,
    people: Any,
    follow: Any,
    post_as: Any,
    run_on_commit: Any,
    ascending: bool,
) -> None:
    """A followed big author's post older than the last stored entry a read took waits for the read
    that reaches it: it is neither repeated nor put out of order when the page reads on."""
    from weituan.microblog.timelines.store import Entry, timeline_store

    settings.FANOUT_FOLLOWER_THRESHOLD = 2
    small, big = people(1, prefix="small")[0], people(1, prefix="big")[0]
    for reader in [*people(2), shopper]:
        follow(reader, big)  # above the threshold: merged at read, never delivered
    follow(shopper, small)
    follow(shopper, outsider)
    home_timeline_ids(shopper.pk)
    base = post_as(small, "base")
    if ascending:
        muted = [post_as(outsider, f"m{index}").id for index in range(15)]
        big_post = post_as(big, "big")
        smalls = [post_as(small, f"s{index}").id for index in range(2)]
    else:
        big_post = post_as(big, "big")
        smalls = [post_as(small, f"s{index}").id for index in range(2)]
        muted = [post_as(outsider, f"m{index}").id for index in range(15)]
    with run_on_commit():
        mute_create(muter=shopper, muted_id=outsider.pk)
    timeline_store().add(shopper.pk, [Entry(post_id, outsider.pk, outsider.pk) for post_id in muted])
    if backend == "redis":
        from weituan.core.redis import get_redis
        from weituan.microblog.timelines.authors import author_key

        get_redis().delete(author_key(big.pk))  # an index evicted: rebuilt on this read
    if ascending:
        page = home_timeline_ids(shopper.pk, min_id=base.id, limit=5)
        assert page == [*smalls[::-1], big_post.id]
    else:
        page = home_timeline_ids(shopper.pk, limit=5)
        assert page == [*smalls[::-1], big_post.id, base.id]
