"""Weibo-specific API under /api/v1/weituan/: the repost tree and chain of a post, its comments, and
notification read state. These add to Mastodon's API without changing any of its shapes."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.core.errors import ValidationFailed
from weituan.mastodon.api_statuses import write_limit
from weituan.mastodon.endpoint_auth import READ_NOTIFICATIONS, READ_STATUSES, WRITE_NOTIFICATIONS
from weituan.mastodon.pagination import page_params_from_request, set_link_header
from weituan.mastodon.request_params import mastodon_params
from weituan.mastodon.serializers_accounts import mastodon_datetime
from weituan.mastodon.serializers_statuses import statuses_json
from weituan.microblog.queries.notifications import notifications_unread_count
from weituan.microblog.queries.posts import comments_page
from weituan.microblog.queries.reposts import TreeNode, repost_chain, repost_tree
from weituan.microblog.services.notifications import notifications_mark_read

router = Router(tags=["weituan"])


def _node_json(node: TreeNode) -> dict[str, Any]:
    return {
        "id": str(node.id),
        "parent_id": str(node.parent_id) if node.parent_id else None,
        "depth": node.depth,
        "account": {"id": str(node.author_id), "username": node.username, "display_name": node.display_name},
        "comment": node.comment,
        "created_at": mastodon_datetime(node.created_at),
        "deleted": node.deleted,
    }


@router.get("/posts/{int:post_id}/tree", auth=READ_STATUSES, summary="The repost tree below a post")
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


@router.get(
    "/posts/{int:post_id}/chain", auth=READ_STATUSES, summary="Every hop from a repost up to its root"
)
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


@router.get("/posts/{int:post_id}/comments", auth=READ_STATUSES, summary="Top comments, or replies to one")
def post_comments(request: HttpRequest, post_id: int) -> HttpResponse:
    page = page_params_from_request(request)
    replies_of = request.GET.get("replies_of")
    if replies_of is not None and not replies_of.isdigit():
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
    response = JsonResponse(statuses_json(views, request), safe=False)
    set_link_header(response, request, [view.id for view in views])
    return response


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
    if raw not in (None, "") and not str(raw).isdigit():
        raise ValidationFailed("up_to_id must be a notification id", code="invalid_id")
    marked = notifications_mark_read(user_id=user.pk, up_to_id=int(raw) if raw else None)
    return {"marked": marked, "unread": notifications_unread_count(user)}
