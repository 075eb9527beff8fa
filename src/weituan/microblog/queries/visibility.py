"""Which posts a reader may see, as one SQL condition, for reads that fetch many posts at once."""

from collections.abc import Sequence
from typing import Any

from django.db.models import Q

from weituan.microblog.models import Block, Follow, Post, Visibility


def visible_posts_q(viewer_id: int | None, *, via: str = "") -> Q:
    """The condition `post_visible_to` checks post by post, for a whole query: the post is live, no
    block stands between its author and the viewer, and a followers-only post is the viewer's own or
    by an account they follow. `via` is the path to the post from the rows queried ("post__" for likes).

    Mutes are not applied: a muted account's posts stay readable where the reader asks for them."""
    live = Q(**{f"{via}deleted_at__isnull": True})
    if viewer_id is None:
        return live & ~Q(**{f"{via}visibility": Visibility.PRIVATE})
    author = f"{via}author_id"
    blocked = Block.objects.filter(blocker_id=viewer_id).values("blocked_id")
    blockers = Block.objects.filter(blocked_id=viewer_id).values("blocker_id")
    followed = Follow.objects.filter(follower_id=viewer_id).values("followee_id")
    readable = (
        ~Q(**{f"{via}visibility": Visibility.PRIVATE})
        | Q(**{author: viewer_id})
        | Q(**{f"{author}__in": followed})
    )
    return live & readable & ~Q(**{f"{author}__in": blocked}) & ~Q(**{f"{author}__in": blockers})


def visible_post_ids(viewer: Any, post_ids: Sequence[int]) -> list[int]:
    """Those of `post_ids` that `viewer` (a user or None) may see, in the order given. One query."""
    wanted = list(dict.fromkeys(post_ids))
    if not wanted:
        return []
    viewer_id = viewer.pk if viewer is not None else None
    seen = set(
        Post.objects.filter(id__in=wanted).filter(visible_posts_q(viewer_id)).values_list("id", flat=True)
    )
    return [post_id for post_id in wanted if post_id in seen]
