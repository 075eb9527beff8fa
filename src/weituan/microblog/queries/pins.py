"""An account's pinned posts (置顶), as a reader may see them."""

from typing import Any

from weituan.microblog.models import Pin
from weituan.microblog.queries.visibility import visible_posts_q


def pinned_post_ids(author_id: int, viewer: Any | None) -> list[int]:
    """The posts `author_id` pinned that `viewer` (a user or None) may see, newest pin first: a
    followers-only post only to its followers, nothing across a block, no deleted post."""
    viewer_id = viewer.pk if viewer is not None else None
    rows = Pin.objects.filter(user_id=author_id).filter(visible_posts_q(viewer_id, via="post__"))
    return list(rows.order_by("-id").values_list("post_id", flat=True))
