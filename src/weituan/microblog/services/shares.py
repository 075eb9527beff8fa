"""A sharer's own short link to a post: one per sharer and post, so a click is credited to that hop.

Sharing an original is hop 0; sharing a repost is that repost's depth in the tree. The link leads to
the deal when the post (or the original at its root) announces one, so visits land where orders are
placed; otherwise to the post's page. Links are made when someone asks to share, never when a post is
drawn, so reading a timeline writes nothing.
"""

from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from weituan.core.errors import PermissionDenied, ValidationFailed
from weituan.microblog.models import PostKind, Visibility
from weituan.microblog.queries.posts import post_get_for_user
from weituan.microblog.services.events import tree_deal_id
from weituan.tracking import facade as tracking

SHARE_CHANNEL = "microblog"


@dataclass(frozen=True, slots=True)
class PostShareLink:
    """The sharer's link to a post: its `code` (the short URL is /s/<code> on the site), where it
    leads, at which hop of the repost tree, and the deal it carries."""

    code: str
    post_id: int
    target_url: str
    hop_depth: int
    deal_id: int | None


def post_share_link(*, sharer: Any, post_id: int, site_url: str) -> PostShareLink:
    """`sharer`'s own link to the post (made on the first ask, the same one on every later ask).

    `site_url` is the scheme and host the link should lead back to (the one the sharer is using).
    Refused, changing nothing, for a post the sharer cannot see or that is deleted ("not_found"), a
    comment ("cannot_share_comment") and someone else's followers-only post ("not_shareable"), as a
    repost of them is.
    """
    post = post_get_for_user(sharer, post_id)
    if post.kind == PostKind.COMMENT:
        raise ValidationFailed("A comment cannot be shared", code="cannot_share_comment")
    if post.visibility == Visibility.PRIVATE and post.author_id != sharer.pk:
        raise PermissionDenied("A followers-only post cannot be shared", code="not_shareable")
    deal_id = tree_deal_id(post.deal_id, post.root_id)
    path = reverse("deals:deal", args=[deal_id]) if deal_id else reverse("microblog:post", args=[post.id])
    link = tracking.short_link_for_share(
        sharer_id=sharer.pk,
        post_id=post.id,
        target_url=site_url.rstrip("/") + path,
        channel=SHARE_CHANNEL,
        hop_depth=post.depth,
        deal_id=deal_id,
    )
    return PostShareLink(
        code=link.code,
        post_id=post.id,
        target_url=link.target_url,
        hop_depth=link.hop_depth,
        deal_id=link.deal_id,
    )
