"""What the rest of the micro-blog calls to get posts into (and out of) timelines."""

from typing import TYPE_CHECKING

from weituan.core.tasks import enqueue_on_commit

if TYPE_CHECKING:
    from weituan.microblog.timelines.tasks import TaskRowInsert


def post_distribute(*, post_id: int) -> None:
    """Schedule the fan-out of a new original post or repost; it runs once the current transaction
    commits, and the database task backend commits the task with the post itself."""
    from weituan.microblog.timelines.tasks import fanout_deliver_enqueue

    fanout_deliver_enqueue(post_id=post_id)


def post_distribute_row(*, post_id: int, using: str) -> "TaskRowInsert | None":
    """The row of a new post's fan-out task, for a caller that writes it with the post itself (in the
    same statement); None when the task backend does not keep its rows in database `using`."""
    from weituan.microblog.timelines.tasks import fanout_deliver_row

    return fanout_deliver_row(post_id=post_id, using=using)


def post_withdraw(*, post_id: int, author_id: int) -> None:
    """Remove a deleted post from every timeline, after the current transaction commits."""
    from weituan.microblog.timelines.tasks import fanout_withdraw_task

    enqueue_on_commit(fanout_withdraw_task, post_id=post_id, author_id=author_id)


def follow_added(*, follower_id: int, followee_id: int) -> None:
    """After commit, backfill the follower's home timeline with the followee's recent posts."""
    from weituan.microblog.timelines.tasks import home_timeline_add_author_task

    enqueue_on_commit(home_timeline_add_author_task, user_id=follower_id, author_id=followee_id)


def authors_hidden(*, user_id: int, author_ids: list[int], with_reposts: bool = True) -> None:
    """After commit, take the authors' posts (and, `with_reposts`, reposts of them) out of a home timeline."""
    from weituan.microblog.timelines.tasks import home_timeline_drop_authors_task

    enqueue_on_commit(
        home_timeline_drop_authors_task,
        user_id=user_id,
        author_ids=sorted(author_ids),
        with_reposts=with_reposts,
    )


def reblogs_hidden(*, user_id: int, author_id: int) -> None:
    """After commit, take the author's plain reposts out of a home timeline (their follow stopped
    showing reposts)."""
    from weituan.microblog.timelines.tasks import home_timeline_drop_reblogs_task

    enqueue_on_commit(home_timeline_drop_reblogs_task, user_id=user_id, author_id=author_id)
