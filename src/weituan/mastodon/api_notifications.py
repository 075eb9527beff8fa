"""Mastodon API: notifications — the list (filterable by type), one, dismiss, clear, the unread count —
and the read markers of the notifications and the home timeline."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.core.errors import ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.mastodon.api_statuses import write_limit
from weituan.mastodon.endpoint_auth import (
    READ_MARKERS,
    READ_NOTIFICATIONS,
    WRITE_MARKERS,
    WRITE_NOTIFICATIONS,
)
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request, set_link_header
from weituan.mastodon.request_params import (
    ID_TEXT,
    TEXT_LIST,
    MastodonParams,
    list_values,
    mastodon_params,
    params_documented,
    query_documented,
)
from weituan.mastodon.serializers_accounts import mastodon_datetime
from weituan.mastodon.serializers_statuses import notifications_json
from weituan.mastodon.status_filters import notifications_filtered
from weituan.microblog.queries.notifications import (
    ReadMarker,
    home_read_marker,
    notification_get,
    notifications_page,
    notifications_read_marker,
    notifications_unread_count,
)
from weituan.microblog.services.markers import home_marker_set
from weituan.microblog.services.notifications import (
    notification_dismiss,
    notifications_clear,
    notifications_mark_read,
)

router = Router(tags=["mastodon:notifications"])


def list_param(request: HttpRequest, name: str) -> list[str]:
    """A list parameter sent as `name[]=` (Mastodon's form) or as repeated `name=`."""
    return request.GET.getlist(f"{name}[]") or request.GET.getlist(name)


UNREAD_DEFAULT_LIMIT = 100
UNREAD_MAX_LIMIT = 1000


def account_id_param(request: HttpRequest) -> int | None:
    """The `account_id` filter of a notifications read (v1 and v2)."""
    account_id = request.GET.get("account_id")
    if account_id is not None and not account_id.isdecimal():
        raise ValidationFailed("account_id must be an account id", code="invalid_id")
    return min(int(account_id), MAX_ID) if account_id else None


@router.get(
    "/notifications",
    openapi_extra=query_documented(
        {
            "types[]": TEXT_LIST,
            "exclude_types[]": TEXT_LIST,
            "account_id": {"type": "string", "pattern": "^[0-9]+$"},
        },
        PAGE_QUERY,
    ),
    auth=READ_NOTIFICATIONS,
    summary="Your notifications, newest first",
)
def notifications_list(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    page = page_params_from_request(request, default_limit=40, max_limit=80)
    rows = notifications_page(
        user,
        types=list_param(request, "types"),
        exclude_types=list_param(request, "exclude_types"),
        account_id=account_id_param(request),
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    shown = notifications_filtered(user, notifications_json(rows, user, request))
    response = JsonResponse(shown, safe=False)
    set_link_header(response, request, [row.id for row in rows])
    return response


@router.get(
    "/notifications/unread_count", auth=READ_NOTIFICATIONS, summary="How many notifications are unread"
)
def notifications_unread(request: HttpRequest) -> dict[str, int]:
    """Filtered by `types[]`, `exclude_types[]` and `account_id` as the list is; at most `limit` (100
    unless asked, up to 1000) are counted, as Mastodon does."""
    raw = request.GET.get("limit") or str(UNREAD_DEFAULT_LIMIT)
    if not raw.isdecimal() or int(raw) < 1:
        raise ValidationFailed("limit must be a positive integer", code="invalid_limit")
    count = notifications_unread_count(
        request_user(request),
        types=list_param(request, "types"),
        exclude_types=list_param(request, "exclude_types"),
        account_id=account_id_param(request),
        limit=min(int(raw), UNREAD_MAX_LIMIT),
    )
    return {"count": count}


@router.get(
    "/notifications/requests", auth=READ_NOTIFICATIONS, summary="Notifications held back for review (none)"
)
def notification_requests(request: HttpRequest) -> list[dict[str, Any]]:
    """Weituan holds no notification back for review (see the v2 notification policy): none waits."""
    return []


@router.get(
    "/notifications/requests/merged",
    auth=READ_NOTIFICATIONS,
    summary="Whether accepted requests are merged into the notifications",
)
def notification_requests_merged(request: HttpRequest) -> dict[str, bool]:
    return {"merged": True}


@router.get("/notifications/{id:notification_id}", auth=READ_NOTIFICATIONS, summary="One notification")
def notification_one(request: HttpRequest, notification_id: int) -> dict[str, Any]:
    user = request_user(request)
    row = notification_get(user, notification_id)
    # Asked for by id: a hiding filter's match is told in its status's `filtered`, not acted on.
    return notifications_filtered(user, notifications_json([row], user, request), leave_out=False)[0]


@router.post("/notifications/clear", auth=WRITE_NOTIFICATIONS, summary="Delete all your notifications")
def notifications_clear_all(request: HttpRequest) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    notifications_clear(user_id=user.pk)
    return {}


@router.post(
    "/notifications/{id:notification_id}/dismiss",
    auth=WRITE_NOTIFICATIONS,
    summary="Delete one notification",
)
def notification_dismiss_one(request: HttpRequest, notification_id: int) -> dict[str, Any]:
    user = request_user(request)
    write_limit(user)
    notification_dismiss(user_id=user.pk, notification_id=notification_id)
    return {}


MARKER_TIMELINES = ("home", "notifications")


def _marker_json(marker: ReadMarker) -> dict[str, Any]:
    return {
        "last_read_id": str(marker.last_read_id),
        "version": marker.version,
        "updated_at": mastodon_datetime(marker.updated_at),
    }


def _markers(user: Any, timelines: list[str]) -> dict[str, Any]:
    """Mastodon's markers of `timelines` that exist: the home one once a client has set it."""
    found: dict[str, Any] = {}
    if "home" in timelines:
        home = home_read_marker(user)
        if home is not None:
            found["home"] = _marker_json(home)
    if "notifications" in timelines:
        found["notifications"] = _marker_json(notifications_read_marker(user))
    return found


@router.get(
    "/markers",
    openapi_extra=query_documented(
        {
            "timeline[]": {
                "type": "array",
                "items": {"type": "string"},
                "description": "home, notifications (other names are left out); none: both",
            }
        }
    ),
    auth=READ_MARKERS,
    summary="Read markers of the home timeline and notifications",
)
def markers_get(request: HttpRequest) -> dict[str, Any]:
    """The markers of the timelines named by `timeline[]` (both when none is named)."""
    asked = [name for name in list_values(request, "timeline") if name in MARKER_TIMELINES]
    return _markers(request_user(request), asked or list(MARKER_TIMELINES))


def _last_read_id(params: MastodonParams, timeline: str) -> int | None:
    params.group(timeline)
    nested = params.values.get(timeline)
    raw = nested.get("last_read_id") if isinstance(nested, dict) else params.text(f"{timeline}[last_read_id]")
    if raw is None:
        return None
    try:
        last_read_id = int(str(raw))
    except ValueError:
        raise ValidationFailed("last_read_id must be an id", code="invalid_id") from None
    if not 0 <= last_read_id <= MAX_ID:  # as the home marker refuses it; no notification has such an id
        raise ValidationFailed("last_read_id must be an id", code="invalid_id")
    return last_read_id


@router.post(
    "/markers",
    auth=WRITE_MARKERS,
    openapi_extra=params_documented(
        {
            timeline: {"type": "object", "properties": {"last_read_id": ID_TEXT}}
            for timeline in ("home", "notifications")
        }
    ),
    summary="Move the home timeline or notifications read marker",
)
def markers_post(request: HttpRequest) -> dict[str, Any]:
    """`home[last_read_id]` keeps the home timeline's reading position; `notifications[last_read_id]`
    marks the notifications up to it read. Answers the markers moved."""
    user = request_user(request)
    write_limit(user)
    params = mastodon_params(request)
    moved = {timeline: _last_read_id(params, timeline) for timeline in MARKER_TIMELINES}
    home, notifications = moved["home"], moved["notifications"]
    if home is not None:
        home_marker_set(user_id=user.pk, last_read_id=home)
    if notifications is not None:
        notifications_mark_read(user_id=user.pk, up_to_id=notifications)
    named = [timeline for timeline, last_read_id in moved.items() if last_read_id is not None]
    return _markers(user, named or list(MARKER_TIMELINES))
