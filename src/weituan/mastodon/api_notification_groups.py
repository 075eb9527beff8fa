"""Mastodon API v2: grouped notifications — the page of groups, one group, dismissing one, and the unread
count of groups (Mastodon 4.3, which clients use once the instance reports its API version 2 or later).

Likes of a post on one day make one group, and so do plain reposts of it (see
`microblog.queries.notification_groups`); the accounts and statuses the groups name are given once each
at the top of the answer, as Mastodon's GroupedNotificationsResults does.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.accounts.queries import users_by_ids
from weituan.core.errors import ValidationFailed
from weituan.mastodon.api_notifications import account_id_param, list_param
from weituan.mastodon.api_statuses import write_limit
from weituan.mastodon.endpoint_auth import READ_NOTIFICATIONS, WRITE_NOTIFICATIONS
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request, set_link_header
from weituan.mastodon.serializers_accounts import accounts_json, mastodon_datetime
from weituan.mastodon.serializers_statuses import notifications_json
from weituan.mastodon.status_filters import items_filtered
from weituan.microblog.models import FilterContext
from weituan.microblog.queries.filters import reader_filters
from weituan.microblog.queries.notification_groups import (
    GROUPABLE_TYPES,
    NotificationGroup,
    notification_group_get,
    notification_groups_page,
    notification_groups_unread_count,
)
from weituan.microblog.services.notifications import notifications_dismiss

router_v2 = Router(tags=["mastodon:v2"])

UNREAD_DEFAULT_LIMIT = 100
UNREAD_MAX_LIMIT = 1000


def _grouped_types(request: HttpRequest) -> frozenset[str]:
    asked = list_param(request, "grouped_types")
    return frozenset(asked) if asked else GROUPABLE_TYPES


def _results(
    groups: list[NotificationGroup], user: Any, request: HttpRequest, *, paged: bool
) -> dict[str, Any]:
    """GroupedNotificationsResults: the groups, with the accounts and statuses they name once each.
    The statuses carry `filtered` by the user's filters of notifications; on a page, a group whose
    status a hiding filter matches is left out, as /api/v1/notifications leaves its notifications out."""
    newest = notifications_json([group.latest for group in groups], user, request)
    shown_groups = items_filtered(
        list(zip(groups, newest, strict=True)),
        reader_filters(user.pk, FilterContext.NOTIFICATIONS),
        lambda pair: pair[1]["status"],
        leave_out=paged,
    )
    statuses: dict[str, dict[str, Any]] = {}
    entries = []
    for group, shown in shown_groups:
        entry: dict[str, Any] = {
            "group_key": group.key,
            "notifications_count": group.count,
            "type": group.type,
            "most_recent_notification_id": str(group.most_recent_id),
            "sample_account_ids": [str(actor_id) for actor_id in group.sample_actor_ids],
        }
        if paged:
            entry["page_min_id"] = str(group.rows[-1].id)
            entry["page_max_id"] = str(group.latest.id)
            entry["latest_page_notification_at"] = mastodon_datetime(group.latest.created_at)
        status = shown["status"]
        if status is not None:
            entry["status_id"] = status["id"]
            statuses.setdefault(status["id"], status)
        entries.append(entry)
    actor_ids = list(
        dict.fromkeys(actor_id for group, _ in shown_groups for actor_id in group.sample_actor_ids)
    )
    users = users_by_ids(actor_ids)
    return {
        "accounts": accounts_json([users[actor_id] for actor_id in actor_ids if actor_id in users], request),
        "statuses": list(statuses.values()),
        "notification_groups": entries,
    }


@router_v2.get(
    "/notifications",
    openapi_extra=PAGE_QUERY,
    auth=READ_NOTIFICATIONS,
    summary="Your notifications in groups",
)
def notification_groups(request: HttpRequest) -> HttpResponse:
    """Pages by notification id through `Link`, as /api/v1/notifications does; `limit` counts groups."""
    user = request_user(request)
    page = page_params_from_request(request, default_limit=40, max_limit=80)
    groups = notification_groups_page(
        user,
        types=list_param(request, "types"),
        exclude_types=list_param(request, "exclude_types"),
        account_id=account_id_param(request),
        grouped_types=_grouped_types(request),
        **page.bounds(),
    )
    results = _results(groups, user, request, paged=True)
    if request.GET.get("expand_accounts") == "partial_avatars":
        results["partial_accounts"] = []  # every account is given in full, which the option allows
    response = JsonResponse(results)
    ids = sorted((row.id for group in groups for row in group.rows), reverse=True)
    set_link_header(response, request, ids)
    return response


@router_v2.get(
    "/notifications/unread_count", auth=READ_NOTIFICATIONS, summary="How many notification groups are unread"
)
def notification_groups_unread(request: HttpRequest) -> dict[str, int]:
    raw = request.GET.get("limit") or str(UNREAD_DEFAULT_LIMIT)
    if not raw.isdecimal() or int(raw) < 1:
        raise ValidationFailed("limit must be a positive integer", code="invalid_limit")
    limit = min(int(raw), UNREAD_MAX_LIMIT)
    count = notification_groups_unread_count(
        request_user(request),
        types=list_param(request, "types"),
        exclude_types=list_param(request, "exclude_types"),
        account_id=account_id_param(request),
        grouped_types=_grouped_types(request),
        limit=limit,
    )
    return {"count": count}


@router_v2.get("/notifications/policy", auth=READ_NOTIFICATIONS, summary="Which notifications are filtered")
def notification_policy(request: HttpRequest) -> dict[str, Any]:
    """Mastodon 4.3's notification policy. Weituan holds back no notification for review (only blocks
    and mutes keep some away), so every category is accepted and no request waits."""
    return {
        "for_not_following": "accept",
        "for_not_followers": "accept",
        "for_new_accounts": "accept",
        "for_private_mentions": "accept",
        "for_limited_accounts": "accept",
        "summary": {"pending_requests_count": 0, "pending_notifications_count": 0},
    }


# Declared after the fixed paths above (unread_count, policy), which would otherwise be read as keys.
@router_v2.get("/notifications/{group_key}", auth=READ_NOTIFICATIONS, summary="One notification group")
def notification_group(request: HttpRequest, group_key: str) -> dict[str, Any]:
    user = request_user(request)
    return _results([notification_group_get(user, group_key)], user, request, paged=False)


@router_v2.get(
    "/notifications/{group_key}/accounts",
    auth=READ_NOTIFICATIONS,
    summary="The accounts of a notification group",
)
def notification_group_accounts(request: HttpRequest, group_key: str) -> list[dict[str, Any]]:
    group = notification_group_get(request_user(request), group_key)
    actor_ids = list(dict.fromkeys(row.actor_id for row in group.rows))
    users = users_by_ids(actor_ids)
    return accounts_json([users[actor_id] for actor_id in actor_ids if actor_id in users], request)


@router_v2.post(
    "/notifications/{group_key}/dismiss", auth=WRITE_NOTIFICATIONS, summary="Delete a notification group"
)
def notification_group_dismiss(request: HttpRequest, group_key: str) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    group = notification_group_get(user, group_key)
    notifications_dismiss(user_id=user.pk, notification_ids=[row.id for row in group.rows])
    return {}
