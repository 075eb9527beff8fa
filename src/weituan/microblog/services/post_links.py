"""The short links of the URLs in a post, made as the post is written: one bulk insert, none without a URL.

Each outbound URL gets its own short link (channel "outbound", shared by the post's author), so a click
on it, through /s/<code>, is counted under that destination and that post. The length rules are not
touched: a URL weighs 23 whatever its length, as the short link it stands for would.
"""

from dataclasses import dataclass
from typing import Any

from django.db.models import F

from weituan.microblog.models import Post
from weituan.microblog.queries.post_links import outbound_urls, post_links_keep
from weituan.tracking import facade as tracking


def post_links_make(post: Post, *, urls: list[str] | None = None) -> None:
    """Make the links of `post`'s URLs (`urls`, when the caller found them already), in the caller's
    transaction (so they exist once the post does)."""
    if urls is None:
        urls = outbound_urls(post.text)
    if not urls:
        return
    codes = tracking.outbound_links_create(post_id=post.id, urls=urls, sharer_id=post.author_id)
    post_links_keep(post.id, codes, urls)


@dataclass(frozen=True, slots=True)
class PostLinksInsert:
    """The INSERT of a post's links, for the one-statement publish: `sql` and `params`, the code meant
    for each of `urls`. The INSERT skips a row it cannot write (a code taken meanwhile)."""

    sql: str
    params: list[Any]
    codes: dict[str, str]
    urls: list[str]


def post_links_statement(post: Post, *, urls: list[str] | None = None) -> PostLinksInsert | None:
    """The INSERT of `post`'s links (`urls`, when the caller found them already), for a caller writing
    the post in one statement; None without a URL."""
    if urls is None:
        urls = outbound_urls(post.text)
    made = tracking.outbound_links_statement(post_id=post.id, urls=urls, sharer_id=post.author_id)
    if made is None:
        return None
    sql, params, codes = made
    return PostLinksInsert(sql=sql, params=params, codes=codes, urls=urls)


def post_links_written(post: Post, links: PostLinksInsert, *, inserted: int) -> None:
    """After the one-statement publish inserted `inserted` of `post`'s links: keep them, or (a code
    was taken meanwhile, which is rare) make the missing ones now."""
    codes = links.codes
    if inserted < len(links.urls):
        codes = tracking.outbound_links_create(post_id=post.id, urls=links.urls, sharer_id=post.author_id)
        # A status rendered in between showed the plain URL: a new row version of the post makes every
        # kept rendering of it stale (an UPDATE is a new version on both stores, whatever it sets).
        Post.objects.filter(id=post.id).update(deleted_at=F("deleted_at"))
    post_links_keep(post.id, codes, links.urls)
