"""Following with `notify` (Mastodon's `notify=true`): the follower is told (`status`) of each new post of
the followee, a post of their own or a quote but not a plain repost nor a comment; the flag is set on a
new follow or request, changed by following again, carried from a request to the follow, and told by the
relationship; a mute or block keeps the notifications away; every author's posts notify, also one whose
fan-out is skipped, and a post notifies once however often its delivery runs: a delivery that fails
after making its job is taken up by the sweep, which tells each follower exactly once."""

from datetime import timedelta
from typing import Any

import pytest
from django.tasks import TaskResultStatus

from weituan.microblog.models import Follow, Mute, Notification, NotificationKind
from weituan.microblog.queries.notifications import notifications_page
from weituan.microblog.queries.relations import relationships
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.notifications import notifications_for_new_posts
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import (
    block_create,
    block_delete,
    follow_create,
    follow_request_authorize,
    mute_create,
)
from weituan.microblog.timelines import fanout, upkeep
from weituan.microblog.timelines.fanout import fanout_deliver, fanout_deliver_many
from weituan.microblog.timelines.models import FanoutJob
from weituan.microblog.timelines.tasks import fanout_deliver_task
from weituan.microblog.timelines.upkeep import fanout_sweep

pytestmark = pytest.mark.django_db


def notifying(viewer: Any, other: Any) -> tuple[bool, bool, bool]:
    found = relationships(viewer.pk, [other.pk])[0]
    return found["following"], found["requested"], found["notifying"]


def told(user: Any) -> list[int | None]:
    """The posts `user` was told of (`status` notifications), newest first."""
    return [row.post_id for row in Notification.objects.filter(recipient=user, kind="status").order_by("-id")]


def test_the_flag_is_set_changed_and_told(shopper: Any, merchant: Any, run_on_commit: Any) -> None:
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk) is True
    assert notifying(shopper, merchant) == (True, False, False)  # off on a new follow
    with run_on_commit():
        assert follow_create(follower=shopper, followee_id=merchant.pk, notify=True) is False
    assert notifying(shopper, merchant) == (True, False, True)
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, reblogs=False)
    assert notifying(shopper, merchant) == (True, False, True)  # not said: left as it was
    assert Follow.objects.get(follower=shopper).show_reblogs is False
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=False)
    assert notifying(shopper, merchant) == (True, False, False)
    # Changing the flag is not a new follow: notified once.
    assert Notification.objects.filter(recipient=merchant, kind="follow").count() == 1


def test_a_request_keeps_the_flag_for_the_follow(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    merchant.locked = True
    merchant.save(update_fields=["locked"])
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk)
        follow_create(follower=outsider, followee_id=merchant.pk, notify=True)
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)  # changes the request
        follow_create(follower=outsider, followee_id=merchant.pk, reblogs=False)  # leaves it
    assert notifying(shopper, merchant) == (False, True, True)
    assert notifying(outsider, merchant) == (False, True, True)
    with run_on_commit():
        post_create(author=merchant, text="只给关注者")
    assert told(shopper) == told(outsider) == []  # nothing until the request is authorized
    with run_on_commit():
        follow_request_authorize(owner=merchant, requester_id=shopper.pk)
    assert notifying(shopper, merchant) == (True, False, True)
    with run_on_commit():
        post = post_create(author=merchant, text="新品")
    assert told(shopper) == [post.id]
    assert told(outsider) == []


def test_new_posts_and_quotes_notify_but_not_reposts_or_comments(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
        follow_create(follower=outsider, followee_id=merchant.pk)  # follows without notify
    with run_on_commit():
        original = post_create(author=merchant, text="今晚开抢")
    other = post_create(author=outsider, text="我的团")
    with run_on_commit():
        plain = repost_create(reposter=merchant, post_id=other.id)
        quote = repost_create(reposter=merchant, post_id=other.id, comment="推荐")
        comment_create(author=merchant, post_id=other.id, text="不错")
    assert plain.comment == ""
    assert told(shopper) == [quote.id, original.id]
    assert told(outsider) == []
    row = Notification.objects.filter(recipient=shopper, kind="status").first()
    assert row is not None and row.actor_id == merchant.pk and row.read_at is None
    # Mastodon's `status` type, filtered in and out.
    assert [n.post_id for n in notifications_page(shopper, types=["status"])] == [quote.id, original.id]
    assert notifications_page(shopper, exclude_types=["status"]) == []
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=False)
        post_create(author=merchant, text="再来一个")
    assert told(shopper) == [quote.id, original.id]


def test_no_notification_from_a_muted_or_blocked_account(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
        follow_create(follower=outsider, followee_id=merchant.pk, notify=True)
        mute_create(muter=shopper, muted_id=merchant.pk)
        block_create(blocker=merchant, blocked_id=outsider.pk)
        block_delete(blocker=merchant, blocked_id=outsider.pk)
        post_create(author=merchant, text="新品")
    assert told(shopper) == []
    assert told(outsider) == []  # the block ended the follow
    # A mute made behind the services' back still counts.
    Mute.objects.filter(muter=shopper).delete()
    Mute.objects.create(muter=outsider, muted=merchant)
    Follow.objects.create(follower=outsider, followee=merchant, notify=True)
    with run_on_commit():
        post = post_create(author=merchant, text="又一个")
    assert told(shopper) == [post.id]
    assert told(outsider) == []


def test_a_high_follower_authors_posts_notify_once(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any, settings: Any
) -> None:
    settings.FANOUT_FOLLOWER_THRESHOLD = 0
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
    with run_on_commit():
        post = post_create(author=merchant, text="大V 发帖")
    assert FanoutJob.objects.get(post_id=post.id).state == "skipped"
    assert told(shopper) == [post.id]
    fanout_deliver(post_id=post.id)  # a delivery run again does not notify again
    assert told(shopper) == [post.id]


def test_posts_delivered_together_notify_each_once(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
        follow_create(follower=shopper, followee_id=outsider.pk, notify=True)
        follow_create(follower=outsider, followee_id=merchant.pk, notify=True)
    # Made without their distribution, then delivered in one go as a burst of queued tasks is.
    first = post_create(author=merchant, text="一")
    second = post_create(author=outsider, text="二")
    third = post_create(author=merchant, text="三")
    fanout_deliver_many(post_ids=[first.id, second.id, third.id])
    fanout_deliver_many(post_ids=[first.id, second.id, third.id])
    assert sorted(p for p in told(shopper) if p) == sorted([first.id, second.id, third.id])
    assert told(outsider) == [third.id, first.id]
    assert Notification.objects.filter(kind=NotificationKind.STATUS).count() == 5


def _notifying_fails(monkeypatch: Any, *, after_telling: bool) -> None:
    """Make the distribution fail where it tells the followers (before the notifications are written,
    or right after), as a database gone away at that moment would."""
    real = fanout.notifications_for_new_posts

    def failing(**kwargs: Any) -> int:
        if after_telling:
            real(**kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(fanout, "notifications_for_new_posts", failing)


@pytest.mark.parametrize("after_telling", [False, True])
def test_a_distribution_failing_after_making_its_job_is_retried_by_the_sweep_and_tells_once(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any, monkeypatch: Any, after_telling: bool
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
        follow_create(follower=outsider, followee_id=merchant.pk, notify=True)
    post = post_create(author=merchant, text="限时秒杀")  # its distribution is run below
    _notifying_fails(monkeypatch, after_telling=after_telling)
    failed = fanout_deliver_task.enqueue(post_id=post.id)
    assert failed.status == TaskResultStatus.FAILED
    # The job and the notifications commit together: the failed start left neither behind.
    assert not FanoutJob.objects.filter(post_id=post.id).exists()
    assert told(shopper) == told(outsider) == []
    monkeypatch.undo()
    monkeypatch.setattr(upkeep, "FANOUT_SWEEP_SETTLE", timedelta(seconds=-1))
    assert fanout_sweep() == 1
    assert told(shopper) == told(outsider) == [post.id]
    # Running it again, by the task or the sweep, tells nobody twice.
    fanout_deliver_task.enqueue(post_id=post.id)
    assert fanout_sweep() == 0
    assert told(shopper) == told(outsider) == [post.id]
    assert FanoutJob.objects.get(post_id=post.id).state == "delivered"


def test_a_burst_whose_notifying_fails_is_retried_by_the_sweep_and_tells_once(
    shopper: Any, merchant: Any, outsider: Any, run_on_commit: Any, monkeypatch: Any
) -> None:
    with run_on_commit():
        follow_create(follower=shopper, followee_id=merchant.pk, notify=True)
        follow_create(follower=shopper, followee_id=outsider.pk, notify=True)
    first = post_create(author=merchant, text="一")
    second = post_create(author=outsider, text="二")
    _notifying_fails(monkeypatch, after_telling=True)
    with pytest.raises(RuntimeError):
        fanout_deliver_many(post_ids=[first.id, second.id])
    assert not FanoutJob.objects.exists()
    assert told(shopper) == []
    monkeypatch.undo()
    monkeypatch.setattr(upkeep, "FANOUT_SWEEP_SETTLE", timedelta(seconds=-1))
    assert fanout_sweep() == 2
    fanout_deliver_many(post_ids=[first.id, second.id])
    assert told(shopper) == [second.id, first.id]


def test_a_post_is_told_to_a_follower_at_most_once_whoever_tells_it(shopper: Any, merchant: Any) -> None:
    Follow.objects.create(follower=shopper, followee=merchant, notify=True)
    post = post_create(author=merchant, text="只说一次")
    for _ in range(2):
        notifications_for_new_posts(posts=[(post.id, merchant.pk)])
    assert told(shopper) == [post.id]
