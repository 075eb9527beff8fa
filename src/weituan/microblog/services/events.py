"""The micro-blog's events for analytics: like, comment, repost and follow, recorded once their write commits.

They go through tracking's write buffer (high volume, batched), and only after the commit: a write that
is refused or rolled back records nothing, and the services call these only for a write that changed
something (a second like or an existing follow records nothing). Each event's `post_id` is the post
acted on (liked, commented on, reposted); the post the action made is in its props. A like, comment or
repost of a deal post, or of a repost or comment under one, carries the deal of the tree's root.
"""

from typing import Any

from django.db import transaction

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
    """Record `event` by `user_id` on `post` once the current transaction commits."""
    post_id, deal_id, root_id = post.id, post.deal_id, post.root_id

    def record() -> None:
        tracking.event_record(
            event=event,
            user_id=user_id,
            visitor_id=visitor_id,
            post_id=post_id,
            deal_id=tree_deal_id(deal_id, root_id),
            props=props,
        )

    # Robust: the change has committed by then, and failing to count it must not fail the request.
    transaction.on_commit(record, robust=True)


def follow_event_record(*, follower_id: int, followee_id: int, visitor_id: str = "") -> None:
    """Record that `follower_id` now follows `followee_id`, once the current transaction commits."""

    def record() -> None:
        tracking.event_record(
            event=tracking.EventName.FOLLOW,
            user_id=follower_id,
            visitor_id=visitor_id,
            props={"followee_id": followee_id},
        )

    transaction.on_commit(record, robust=True)
