"""Weibo-specific API under /api/v1/weituan/: the repost tree and chain of a post, its comments, the
caller's own share link to a post, and notification read state. These add to Mastodon's API without
changing any of its shapes."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Router, Schema

from weituan.accounts.auth import request_user
from weituan.core.errors import ValidationFailed
from weituan.mastodon.api_statuses import statuses_page_response, write_limit
from weituan.mastodon.endpoint_auth import (
    READ_NOTIFICATIONS,
    READ_STATUSES,
    WRITE_NOTIFICATIONS,
    WRITE_STATUSES,
)
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request
from weituan.mastodon.request_params import mastodon_params
from weituan.mastodon.serializers_accounts import mastodon_datetime
from weituan.mastodon.serializers_statuses import site_base
from weituan.microblog.queries.notifications import notifications_unread_count
from weituan.microblog.queries.posts import comments_page
from weituan.microblog.queries.reposts import TreeNode, repost_chain, repost_tree
from weituan.microblog.services.notifications import notifications_mark_read
from weituan.microblog.services.shares import post_share_link

router = Router(tags=["weituan"])


class ShareLinkOut(Schema):
    """The caller's own short link to a post: a click on `url` is credited to them, at `hop_depth`."""

    code: str
    url: str
    post_id: str
    hop_depth: int
    deal_id: str | None
    target_url: str


class ErrorOut(Schema):
    error: str
    code: str


def _node_json(node: TreeNode) -> dict[str, Any]:
    """A node; one by an account hidden from the caller has `hidden` set, no account and no comment."""
    account = None
    if not node.hidden:
        account = {"id": str(node.author_id), "username": node.username, "display_name": node.display_name}
    return {
        "id": str(node.id),
        "parent_id": str(node.parent_id) if node.parent_id else None,
        "depth": node.depth,
        "account": account,
        "comment": node.comment,
        "created_at": mastodon_datetime(node.created_at),
        "deleted": node.deleted,
        "hidden": node.hidden,
    }


@router.get(
    "/posts/{id:post_id}/tree",
    auth=READ_STATUSES,
    summary="The repost tree below a post",
    description=(
        "Each hop a node, parents before their children. A repost by an account hidden from the caller"
        " (a block either way, a mute) keeps its place when reposts the caller sees hang from it, with"
        " `hidden` true, `account` null and an empty `comment`; one with none below it is left out."
        " A followers-only repost reads the same way to a caller who does not follow its author."
        " `size` (the nodes below the post that are not deleted, hidden ones included) and `max_depth`"
        " (the deepest node's depth below the post) count the nodes the caller is given, not those left"
        " out, so they differ from one caller to another; the post's `reblogs_count` is the public count."
        " When `truncated` is true, only the oldest hops were read, and the counts are of those."
    ),
)
def post_tree(request: HttpRequest, post_id: int) -> dict[str, Any]:
    tree = repost_tree(post_id, request_user(request))
    return {
        "post_id": str(tree.post_id),
        "root_id": str(tree.root_id),
        "size": tree.size,
        "max_depth": tree.max_depth,
        "truncated": tree.truncated,
        "nodes": [_node_json(node) for node in tree.nodes],
    }


@router.get("/posts/{id:post_id}/chain", auth=READ_STATUSES, summary="Every hop from a repost up to its root")
def post_chain(request: HttpRequest, post_id: int) -> dict[str, Any]:
    hops = repost_chain(post_id, request_user(request))
    return {
        "post_id": str(post_id),
        "hops": [
            {
                "post_id": str(hop.post_id),
                "account_id": str(hop.author_id),
                "username": hop.username,
                "comment": hop.comment,
                "depth": hop.depth,
                "deleted": hop.deleted,
            }
            for hop in hops
        ],
    }


@router.get(
    "/posts/{id:post_id}/comments",
    openapi_extra=PAGE_QUERY,
    auth=READ_STATUSES,
    summary="Top comments, or replies to one",
)
def post_comments(request: HttpRequest, post_id: int) -> HttpResponse:
    page = page_params_from_request(request)
    replies_of = request.GET.get("replies_of")
    if replies_of is not None and not replies_of.isdecimal():
        raise ValidationFailed("replies_of must be a comment id", code="invalid_id")
    user = request_user(request)
    views = comments_page(
        user,
        post_id,
        replies_of=int(replies_of) if replies_of else None,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    return statuses_page_response(request, views)


@router.post(
    "/statuses/{id:status_id}/share_link",
    auth=WRITE_STATUSES,
    response={200: ShareLinkOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    summary="The caller's own short link to a post (one per caller and post)",
    description=(
        "Made on the first call, the same link on every later one. Sharing an original is hop 0, a"
        " repost its depth in the repost tree. The link leads to the deal when the post or the original"
        " at its root announces one, else to the post's page. Errors: `not_found` (unknown, deleted or"
        " not visible to the caller), `cannot_share_comment`, `not_shareable` (someone else's"
        " followers-only post)."
    ),
)
def share_link(request: HttpRequest, status_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    base = site_base(request)
    link = post_share_link(sharer=user, post_id=status_id, site_url=base)
    return {
        "code": link.code,
        "url": base + reverse("tracking:short_link", args=[link.code]),
        "post_id": str(link.post_id),
        "hop_depth": link.hop_depth,
        "deal_id": str(link.deal_id) if link.deal_id else None,
        "target_url": link.target_url,
    }


@router.get(
    "/notifications/unread_count", auth=READ_NOTIFICATIONS, summary="How many notifications are unread"
)
def unread_count(request: HttpRequest) -> dict[str, int]:
    return {"count": notifications_unread_count(request_user(request))}


@router.post(
    "/notifications/read",
    auth=WRITE_NOTIFICATIONS,
    summary="Mark notifications read (all, or up to up_to_id)",
)
def notifications_read(request: HttpRequest) -> dict[str, int]:
    user = request_user(request)
    write_limit(user)
    raw = mastodon_params(request).text("up_to_id")
    if raw not in (None, "") and not str(raw).isdecimal():
        raise ValidationFailed("up_to_id must be a notification id", code="invalid_id")
    marked = notifications_mark_read(user_id=user.pk, up_to_id=int(raw) if raw else None)
    return {"marked": marked, "unread": notifications_unread_count(user)}
