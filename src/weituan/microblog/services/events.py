"""The micro-blog's events for analytics: like, comment, repost and follow, written with their change.

They are business events: each goes to tracking's outbox in the transaction of the write it records, so
it is stored exactly when the write commits (a write that is refused or rolled back records nothing,
and one that commits is never lost to a crash), and the services call these only for a write that
changed something (a second like or an existing follow records nothing). Each event's `post_id` is the
post acted on (liked, commented on, reposted); the post the action made is in its props. A like,
comment or repost of a deal post, or of a repost or comment under one, carries the deal of the tree's
root.
"""

from typing import Any

from weituan.microblog.models import Post
from weituan.tracking import facade as tracking


def tree_deal_id(deal_id: int | None, root_id: int | None) -> int | None:
    """The deal a post carries (`deal_id`: its own), else the deal of the original at its root."""
    if deal_id is not None or root_id is None:
        return deal_id
    return Post.objects.filter(id=root_id).values_list("deal_id", flat=True).first()


def post_event_record(
    *, event: str, user_id: int, post: Post, visitor_id: str = "", props: dict[str, Any] | None = None
) -> None:
    """Record `event` by `user_id` on `post` in the current transaction."""
    tracking.event_emit(
        event=event,
        user_id=user_id,
        visitor_id=visitor_id,
        post_id=post.id,
        deal_id=tree_deal_id(post.deal_id, post.root_id),
        props=props,
    )


def follow_event_record(*, follower_id: int, followee_id: int, visitor_id: str = "") -> None:
    """Record that `follower_id` now follows `followee_id`, in the current transaction."""
    tracking.event_emit(
        event=tracking.EventName.FOLLOW,
        user_id=follower_id,
        visitor_id=visitor_id,
        props={"followee_id": followee_id},
    )
