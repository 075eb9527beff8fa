"""The posts an account keeps (收藏, Mastodon's bookmarks), newest bookmark first, paged by its id."""

from dataclasses import dataclass
from typing import Any

from weituan.microblog.models import Bookmark
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.visibility import visible_posts_q


@dataclass(frozen=True, slots=True)
class BookmarkedPost:
    """One bookmark of the page: `cursor` is the bookmark's id (what the page is paged by), `post_id`
    the post."""

    cursor: int
    post_id: int


def bookmarked_posts_page(
    user: Any,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[BookmarkedPost]:
    """The posts `user` keeps that they may still see (deleted posts, posts of accounts on either side
    of a block and followers-only posts of accounts they no longer follow left out, though their
    bookmarks stay until removed), newest bookmark first, paged by the bookmarks' ids as Mastodon
    pages its bookmarks."""
    rows = Bookmark.objects.filter(user_id=user.pk).filter(visible_posts_q(user.pk, via="post__"))
    found = id_page(rows.only("id", "post_id"), max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
    return [BookmarkedPost(cursor=bookmark.id, post_id=bookmark.post_id) for bookmark in found]
