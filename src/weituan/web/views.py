"""The home page (compose box and home timeline, or a group's timeline, or the public timeline for
visitors), its infinite scroll and new-post poll, notifications, the user's bookmarks, and the health check."""

from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from weituan.accounts.queries import verified_merchants
from weituan.core.errors import NotFound
from weituan.microblog.models import FollowList
from weituan.microblog.queries.bookmarks import bookmarked_posts_page
from weituan.microblog.queries.lists import follow_list_for_owner, follow_lists_of
from weituan.microblog.queries.notifications import notifications_page, notifications_unread_count
from weituan.microblog.queries.posts import posts_hydrate
from weituan.microblog.queries.relations import follow_requests_count, hidden_author_ids
from weituan.microblog.search.trending import trending_topics
from weituan.microblog.services.notifications import notifications_mark_read
from weituan.microblog.timelines.lists import list_timeline_ids
from weituan.microblog.timelines.queries import home_timeline_ids_in, public_timeline_ids, read_context
from weituan.web.impressions import shown_in_timeline
from weituan.web.responses import is_htmx, query_id

PAGE_SIZE = 20
NOTIFICATIONS_PER_PAGE = 30
TRENDS_ON_HOME = 10
SUGGESTED_SHOPS = 5


def more_url(path: str, ids: list[int], page_size: int = PAGE_SIZE, **params: Any) -> str | None:
    """The URL of the next (older) page after `ids`, or None when this page was the last."""
    if len(ids) < page_size:
        return None
    return f"{path}?{urlencode({**params, 'max_id': ids[-1]})}"


def _chosen_group(request: HttpRequest) -> FollowList | None:
    """The group (分组) whose timeline the home page reads (`?list=`), None for the whole home
    timeline; someone else's or an unknown one is NotFound."""
    raw = request.GET.get("list", "")
    if not raw or not request.user.is_authenticated:
        return None
    return follow_list_for_owner(request.user.pk, int(raw) if raw.isascii() and raw.isdecimal() else 0)


class _Page(NamedTuple):
    ids: list[int]
    # Whether the reader may have keyword filters for this timeline (the home read context says when
    # they have none, and then none are read).
    filtered: bool


def _timeline_ids(
    request: HttpRequest,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    group: FollowList | None = None,
) -> _Page:
    if group is not None:  # the group's owner is the reader
        hidden = frozenset(hidden_author_ids(group.owner_id))
        ids = list_timeline_ids(
            group.owner_id, group.pk, hidden=hidden, max_id=max_id, since_id=since_id, limit=PAGE_SIZE
        )
        return _Page(ids, True)
    if request.user.is_authenticated:
        context = read_context(request.user.pk)
        ids = home_timeline_ids_in(
            request.user.pk, context, max_id=max_id, since_id=since_id, limit=PAGE_SIZE
        )
        return _Page(ids, context.filtered)
    return _Page(
        public_timeline_ids(viewer_id=None, max_id=max_id, since_id=since_id, limit=PAGE_SIZE), False
    )


def _timeline_name(request: HttpRequest, group: FollowList | None = None) -> str:
    if group is not None:
        return "list"
    return "home" if request.user.is_authenticated else "public"


def _group_params(group: FollowList | None) -> dict[str, Any]:
    return {"list": group.pk} if group is not None else {}


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Signed in: the compose box and the home timeline, or with `list` one group's timeline. A visitor:
    the public timeline and trending topics. With `max_id` from htmx, only the next page of cards
    (infinite scroll)."""
    max_id = query_id(request, "max_id")
    try:
        group = _chosen_group(request)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    if max_id is not None and is_htmx(request):
        ids, filtered = _timeline_ids(request, max_id=max_id, group=group)
        viewer = request.user if request.user.is_authenticated else None
        views = shown_in_timeline(
            request, posts_hydrate(ids, viewer), _timeline_name(request, group), filtered=filtered
        )
        context = {
            "views": views,
            "more_url": more_url(reverse("web:home"), ids, PAGE_SIZE, **_group_params(group)),
        }
        return render(request, "microblog/_post_list.html", context)
    return home_page(request, max_id=max_id, group=group)


def home_page(
    request: HttpRequest,
    *,
    max_id: int | None = None,
    compose_text: str = "",
    status: int = 200,
    group: FollowList | None = None,
) -> HttpResponse:
    """The whole home page; `compose_text` refills the compose box after a refused post (without
    JavaScript), its weighted length counted here. With `group`, that group's timeline under the tabs
    of the user's groups, without the compose box."""
    viewer = request.user if request.user.is_authenticated else None
    ids, filtered = _timeline_ids(request, max_id=max_id, group=group)
    shown = shown_in_timeline(
        request, posts_hydrate(ids, viewer), _timeline_name(request, group), filtered=filtered
    )
    context: dict[str, Any] = {
        "views": shown,
        "more_url": more_url(reverse("web:home"), ids, PAGE_SIZE, **_group_params(group)),
        "newest_id": ids[0] if ids else 0,
        "max_length": settings.POST_MAX_WEIGHTED_LENGTH,
        "compose_text": compose_text,
        "group": group,
    }
    if viewer is not None:
        context["groups"] = follow_lists_of(viewer.pk)
    if viewer is None:
        context["trends"] = trending_topics(limit=TRENDS_ON_HOME)
    elif not ids and group is None:
        # An empty timeline (a newcomer): suggest shops to follow.
        context["suggested"] = [
            shop for shop in verified_merchants()[: SUGGESTED_SHOPS + 1] if shop.pk != viewer.pk
        ]
    return render(request, "web/home.html", context, status=status)


@require_GET
def home_new(request: HttpRequest) -> HttpResponse:
    """The new-post poll of the home page (or of the group it shows, `list`). Without `show`: a "N new posts" button when there are any
    (else the poller again). With `show`: the new cards, followed by a poller above them."""
    since_id = query_id(request, "since_id") or 0
    try:
        group = _chosen_group(request)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    ids, filtered = _timeline_ids(request, since_id=since_id, group=group)
    context: dict[str, Any] = {"since_id": since_id, "new_count": len(ids), "group": group}
    if request.GET.get("show") and ids:
        viewer = request.user if request.user.is_authenticated else None
        views = shown_in_timeline(
            request, posts_hydrate(ids, viewer), _timeline_name(request, group), filtered=filtered
        )
        context.update(views=views, since_id=ids[0], new_count=0, shown=True)
    return render(request, "web/_new_posts.html", context)


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    """The user's notifications, newest first; viewing the first page marks everything up to it read."""
    max_id = query_id(request, "max_id")
    rows = notifications_page(request.user, max_id=max_id, limit=NOTIFICATIONS_PER_PAGE)
    unread_ids = {row.id for row in rows if row.read_at is None}
    if rows and max_id is None:
        notifications_mark_read(user_id=rows[0].recipient_id, up_to_id=rows[0].id)
    ids = [row.id for row in rows]
    context: dict[str, Any] = {
        "rows": rows,
        "unread_ids": unread_ids,
        "more_url": more_url(reverse("web:notifications"), ids, NOTIFICATIONS_PER_PAGE),
    }
    if max_id is not None and is_htmx(request):
        return render(request, "web/_notification_list.html", context)
    owner: Any = request.user
    context["follow_requests"] = follow_requests_count(owner.pk)
    return render(request, "web/notifications.html", context)


@login_required
@require_GET
def bookmarks(request: HttpRequest) -> HttpResponse:
    """The posts the user keeps (收藏), newest bookmark first, paged by the bookmark; with `max_id` from
    htmx, only the next page of cards (infinite scroll)."""
    rows = bookmarked_posts_page(request.user, max_id=query_id(request, "max_id"), limit=PAGE_SIZE)
    context: dict[str, Any] = {
        "views": posts_hydrate([row.post_id for row in rows], request.user),
        "more_url": more_url(reverse("web:bookmarks"), [row.cursor for row in rows], PAGE_SIZE),
    }
    if is_htmx(request) and query_id(request, "max_id") is not None:
        return render(request, "microblog/_post_list.html", context)
    return render(request, "web/bookmarks.html", context)


@require_GET
def notifications_badge(request: HttpRequest) -> HttpResponse:
    """The unread count in the navigation bar, polled by htmx."""
    count = notifications_unread_count(request.user) if request.user.is_authenticated else 0
    return render(request, "web/_unread_badge.html", {"unread": count})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
