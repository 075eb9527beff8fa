"""The posts an account liked (Mastodon's favourites), newest like first, paged by the like's id."""

from dataclasses import dataclass
from typing import Any

from weituan.microblog.models import Like
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.visibility import visible_posts_q


@dataclass(frozen=True, slots=True)
class LikedPost:
    """One like of the page: `cursor` is the like's id (what the page is paged by), `post_id` the post."""

    cursor: int
    post_id: int


def liked_posts_page(
    user: Any,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[LikedPost]:
    """The posts `user` liked that they may still see (deleted posts, posts of accounts on either side
    of a block and followers-only posts of accounts they no longer follow left out), newest like first.

    As on Mastodon the cursors are the likes' ids, not the posts': a like of an old post is as recent as
    the moment it was given."""
    rows = Like.objects.filter(user_id=user.pk).filter(visible_posts_q(user.pk, via="post__"))
    found = id_page(rows.only("id", "post_id"), max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
    return [LikedPost(cursor=like.id, post_id=like.post_id) for like in found]
