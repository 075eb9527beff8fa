"""Mastodon API: relations (follow, follow requests, block, mute, relationships, familiar followers,
follower lists) and an account's statuses.

Ids in paths use the `id` converter (see core.ids), so /accounts/relationships is never read as an
account id.
Lists page by the relation's own id (the follow, block or mute row), as Mastodon does, through `Link`.
"""

import re
from collections.abc import Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.accounts.queries import user_get, users_by_ids
from weituan.core.errors import ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.core.ratelimit import user_relations_hit
from weituan.mastodon.endpoint_auth import (
    READ_ACCOUNTS,
    READ_BLOCKS,
    READ_FOLLOWS,
    READ_MUTES,
    READ_STATUSES,
    WRITE_BLOCKS,
    WRITE_FOLLOWS,
    WRITE_MUTES,
)
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request, set_link_header
from weituan.mastodon.request_params import (
    BOOLEAN,
    ID_LIST,
    list_values,
    mastodon_params,
    params_documented,
    query_documented,
)
from weituan.mastodon.serializers_accounts import accounts_json, mastodon_datetime
from weituan.mastodon.serializers_statuses import statuses_json
from weituan.mastodon.status_filters import statuses_filtered_for
from weituan.microblog.models import FilterContext
from weituan.microblog.queries import relations as relation_queries
from weituan.microblog.queries.pins import pinned_post_ids
from weituan.microblog.queries.posts import posts_hydrate
from weituan.microblog.services import relations as relation_services
from weituan.microblog.services.relations import MUTE_DURATION_MAX
from weituan.microblog.timelines.queries import user_timeline_ids

router = Router(tags=["mastodon:relations"])

MAX_RELATIONSHIP_IDS = 100


def _writer(request: HttpRequest) -> Any:
    """The caller, counted against the write rate limit."""
    user = request_user(request)
    user_relations_hit(user)
    return user


def _relationship_with(user: Any, account_id: int) -> dict[str, Any]:
    return relation_queries.relationships(user.pk, [account_id])[0]


@router.post(
    "/accounts/{id:account_id}/follow",
    auth=WRITE_FOLLOWS,
    openapi_extra=params_documented({"reblogs": BOOLEAN, "notify": BOOLEAN}),
    summary="Follow an account",
)
def follow(request: HttpRequest, account_id: int) -> dict[str, Any]:
    """`reblogs=false` keeps the account's plain reposts out of the caller's home timeline; asking
    again with `reblogs=true` lets them back in. `notify=true` has the caller notified (`status`) of each
    new post of the account, `notify=false` stops it; left out, either stays as it was."""
    user = _writer(request)
    params = mastodon_params(request)
    relation_services.follow_create(
        follower=user, followee_id=account_id, reblogs=params.flag("reblogs"), notify=params.flag("notify")
    )
    return _relationship_with(user, account_id)


@router.post("/accounts/{id:account_id}/unfollow", auth=WRITE_FOLLOWS, summary="Stop following an account")
def unfollow(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = _writer(request)
    relation_services.follow_delete(follower=user, followee_id=account_id)
    return _relationship_with(user, account_id)


@router.post("/accounts/{id:account_id}/block", auth=WRITE_BLOCKS, summary="Block an account")
def block(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = _writer(request)
    relation_services.block_create(blocker=user, blocked_id=account_id)
    return _relationship_with(user, account_id)


@router.post("/accounts/{id:account_id}/unblock", auth=WRITE_BLOCKS, summary="Lift a block")
def unblock(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = _writer(request)
    relation_services.block_delete(blocker=user, blocked_id=account_id)
    return _relationship_with(user, account_id)


def _duration_param(value: Any) -> int:
    """Mastodon's mute `duration`: whole seconds, 0 (or left out) for a mute without an end. Anything
    but a whole number is refused (422 `invalid_duration`); the service checks its range."""
    if value is None or value == "":
        return 0
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValidationFailed("duration must be a whole number of seconds", code="invalid_duration")
    return int(text)


@router.post(
    "/accounts/{id:account_id}/mute",
    auth=WRITE_MUTES,
    openapi_extra=params_documented(
        {
            "notifications": BOOLEAN,
            "duration": {"type": "integer", "minimum": 0, "maximum": MUTE_DURATION_MAX},
        }
    ),
    summary="Mute an account",
)
def mute(request: HttpRequest, account_id: int) -> dict[str, Any]:
    """`notifications` (default true) hides the account's notifications too; `duration` (seconds, 0 or
    left out for none) ends the mute by itself. Muting again sets both anew, as Mastodon does."""
    user = _writer(request)
    params = mastodon_params(request)
    notifications = params.flag("notifications")
    duration = _duration_param(params.values.get("duration"))
    relation_services.mute_create(
        muter=user,
        muted_id=account_id,
        notifications=True if notifications is None else notifications,
        duration=duration,
    )
    return _relationship_with(user, account_id)


@router.post("/accounts/{id:account_id}/unmute", auth=WRITE_MUTES, summary="Unmute an account")
def unmute(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = _writer(request)
    relation_services.mute_delete(muter=user, muted_id=account_id)
    return _relationship_with(user, account_id)


@router.get(
    "/accounts/relationships",
    openapi_extra=query_documented({"id[]": ID_LIST}),
    auth=READ_FOLLOWS,
    summary="Relationships with the given accounts",
)
def relationships(request: HttpRequest) -> list[dict[str, Any]]:
    raw = list_values(request, "id")
    try:
        ids = [int(value) for value in raw]
    except ValueError:
        raise ValidationFailed("id[] must be account ids", code="invalid_id") from None
    if len(ids) > MAX_RELATIONSHIP_IDS:
        raise ValidationFailed(f"At most {MAX_RELATIONSHIP_IDS} ids", code="too_many_ids")
    # A number no id can be names no account; the stores cannot even compare with it.
    wanted = [i for i in ids if i <= MAX_ID]
    return relation_queries.relationships(request_user(request).pk, wanted, known_only=True)


@router.get(
    "/accounts/familiar_followers",
    openapi_extra=query_documented({"id[]": ID_LIST}),
    auth=READ_FOLLOWS,
    summary="Accounts you follow that follow the given accounts",
)
def familiar_followers(request: HttpRequest) -> list[dict[str, Any]]:
    """What a profile shows under its name ("followed by ... whom you follow"), for each `id[]`."""
    raw = list_values(request, "id")
    try:
        ids = [int(value) for value in raw]
    except ValueError:
        raise ValidationFailed("id[] must be account ids", code="invalid_id") from None
    if len(ids) > MAX_RELATIONSHIP_IDS:
        raise ValidationFailed(f"At most {MAX_RELATIONSHIP_IDS} ids", code="too_many_ids")
    known = users_by_ids(ids)
    wanted = [account_id for account_id in dict.fromkeys(ids) if account_id in known]
    found = relation_queries.familiar_followers(request_user(request).pk, wanted)
    people = users_by_ids({follower_id for followers in found.values() for follower_id in followers})
    return [
        {
            "id": str(account_id),
            "accounts": accounts_json(
                [people[follower_id] for follower_id in found[account_id] if follower_id in people], request
            ),
        }
        for account_id in wanted
    ]


def accounts_page(
    request: HttpRequest, response: HttpResponse, rows: Sequence[relation_queries.RelationRow]
) -> list[dict[str, Any]]:
    """A page of accounts paged by their relation's rows (follows, blocks, a list's memberships), with
    its `Link` header."""
    users = users_by_ids(row.user_id for row in rows)
    set_link_header(response, request, [row.cursor for row in rows])
    return accounts_json([users[row.user_id] for row in rows if row.user_id in users], request)


def _list_args(request: HttpRequest) -> dict[str, Any]:
    page = page_params_from_request(request, default_limit=40, max_limit=80)
    return {"max_id": page.max_id, "since_id": page.since_id, "min_id": page.min_id, "limit": page.limit}


@router.get(
    "/accounts/{id:account_id}/followers",
    openapi_extra=PAGE_QUERY,
    auth=READ_ACCOUNTS,
    summary="Who follows an account",
)
def followers(request: HttpRequest, response: HttpResponse, account_id: int) -> list[dict[str, Any]]:
    user_get(account_id)
    return accounts_page(
        request, response, relation_queries.followers_page(account_id, **_list_args(request))
    )


@router.get(
    "/accounts/{id:account_id}/following",
    openapi_extra=PAGE_QUERY,
    auth=READ_ACCOUNTS,
    summary="Whom an account follows",
)
def following(request: HttpRequest, response: HttpResponse, account_id: int) -> list[dict[str, Any]]:
    user_get(account_id)
    return accounts_page(
        request, response, relation_queries.following_page(account_id, **_list_args(request))
    )


@router.get("/blocks", openapi_extra=PAGE_QUERY, auth=READ_BLOCKS, summary="Accounts the caller blocked")
def blocks(request: HttpRequest, response: HttpResponse) -> list[dict[str, Any]]:
    rows = relation_queries.blocks_page(request_user(request).pk, **_list_args(request))
    return accounts_page(request, response, rows)


@router.get("/mutes", openapi_extra=PAGE_QUERY, auth=READ_MUTES, summary="Accounts the caller muted")
def mutes(request: HttpRequest, response: HttpResponse) -> list[dict[str, Any]]:
    """The muted accounts, each with Mastodon 4's `mute_expires_at` (null for a mute without an end)."""
    rows = relation_queries.mutes_page(request_user(request).pk, **_list_args(request))
    accounts = accounts_page(request, response, rows)
    ends = {str(row.user_id): row.expires_at for row in rows}
    for account in accounts:
        account["mute_expires_at"] = mastodon_datetime(ends[account["id"]])
    return accounts


@router.get(
    "/follow_requests",
    openapi_extra=PAGE_QUERY,
    auth=READ_FOLLOWS,
    summary="Accounts waiting for the caller's approval",
)
def follow_requests(request: HttpRequest, response: HttpResponse) -> list[dict[str, Any]]:
    rows = relation_queries.follow_requests_page(request_user(request).pk, **_list_args(request))
    return accounts_page(request, response, rows)


@router.post(
    "/follow_requests/{id:account_id}/authorize", auth=WRITE_FOLLOWS, summary="Accept a follow request"
)
def follow_request_authorize(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = _writer(request)
    relation_services.follow_request_authorize(owner=user, requester_id=account_id)
    return _relationship_with(user, account_id)


@router.post(
    "/follow_requests/{id:account_id}/reject", auth=WRITE_FOLLOWS, summary="Turn down a follow request"
)
def follow_request_reject(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = _writer(request)
    relation_services.follow_request_reject(owner=user, requester_id=account_id)
    return _relationship_with(user, account_id)


@router.get(
    "/accounts/{id:account_id}/statuses",
    openapi_extra=query_documented(
        {
            "pinned": BOOLEAN,
            "exclude_replies": BOOLEAN,
            "exclude_reblogs": BOOLEAN,
            "only_media": BOOLEAN,
            "tagged": {"type": "string"},
        },
        PAGE_QUERY,
    ),
    auth=READ_STATUSES,
    summary="An account's posts and reposts",
)
def account_statuses(request: HttpRequest, response: HttpResponse, account_id: int) -> list[dict[str, Any]]:
    author = user_get(account_id)
    params = mastodon_params(request)
    page = page_params_from_request(request)
    viewer = request_user(request)
    if params.flag("pinned"):
        # The pinned posts are few (PINS_MAX) and come whole, newest pin first, with no pages.
        pinned = statuses_json(posts_hydrate(pinned_post_ids(author.pk, viewer), viewer), request)
        return statuses_filtered_for(viewer, FilterContext.ACCOUNT, pinned)
    # Comments (Mastodon's replies) live under the post they answer, never among an account's posts, as
    # on Weibo: `exclude_replies` is always met. There are no direct messages for `exclude_direct`.
    ids = user_timeline_ids(
        author.pk,
        viewer_id=viewer.pk if viewer is not None else None,
        exclude_reblogs=bool(params.flag("exclude_reblogs")),
        only_media=bool(params.flag("only_media")),
        tagged=params.text("tagged"),
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    set_link_header(response, request, ids)
    return statuses_filtered_for(
        viewer, FilterContext.ACCOUNT, statuses_json(posts_hydrate(ids, viewer), request)
    )
