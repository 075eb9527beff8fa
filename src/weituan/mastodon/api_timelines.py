"""Mastodon API: the home, public and tag timelines, paged by id with a `Link` header.

Each endpoint reads one page of post ids and renders them in a fixed number of queries, so the home
timeline costs the same number of queries for 20 statuses as for 40; statuses rendered for an earlier
page and unchanged since are reused (see `timeline_statuses_json`).
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from weituan.accounts.auth import optional_auth, request_user, request_viewer, viewer_auth
from weituan.mastodon.pagination import page_params_from_request, set_link_header
from weituan.mastodon.request_params import mastodon_params
from weituan.mastodon.serializers_statuses import timeline_statuses_json
from weituan.microblog.timelines.queries import home_timeline_ids, public_timeline_ids, topic_timeline_ids

router = Router(tags=["mastodon:timelines"])


def home_timeline_page(request: HttpRequest, viewer_id: int) -> tuple[list[int], list[dict[str, Any]]]:
    """The post ids and Status entities of the caller's home page asked for by the query string.

    Shared with the ASGI fast path (`api_timelines_fast`), so both answer with the same JSON.
    """
    page = page_params_from_request(request)
    ids = home_timeline_ids(
        viewer_id, max_id=page.max_id, since_id=page.since_id, min_id=page.min_id, limit=page.limit
    )
    return ids, timeline_statuses_json(ids, viewer_id, request)


def _statuses(
    request: HttpRequest, response: HttpResponse, ids: list[int], viewer: Any
) -> list[dict[str, Any]]:
    set_link_header(response, request, ids)
    return timeline_statuses_json(ids, viewer.pk if viewer is not None else None, request)


@router.get("/timelines/home", auth=viewer_auth, summary="The caller's home timeline")
def home(request: HttpRequest, response: HttpResponse) -> list[dict[str, Any]]:
    ids, statuses = home_timeline_page(request, request_viewer(request).pk)
    set_link_header(response, request, ids)
    return statuses


@router.get("/timelines/public", auth=optional_auth, summary="Every public post")
def public(request: HttpRequest, response: HttpResponse) -> list[dict[str, Any]]:
    viewer = request_user(request)
    params = mastodon_params(request)
    page = page_params_from_request(request)
    # Weituan has no federation: every post is local, so `local` changes nothing and `remote` finds none.
    if params.flag("remote"):
        return []
    ids = public_timeline_ids(
        viewer_id=viewer.pk if viewer is not None else None,
        only_media=bool(params.flag("only_media")),
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    return _statuses(request, response, ids, viewer)


@router.get("/timelines/tag/{hashtag}", auth=optional_auth, summary="Public posts with a topic")
def tag(request: HttpRequest, response: HttpResponse, hashtag: str) -> list[dict[str, Any]]:
    viewer = request_user(request)
    page = page_params_from_request(request)
    ids = topic_timeline_ids(
        hashtag,
        viewer_id=viewer.pk if viewer is not None else None,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    return _statuses(request, response, ids, viewer)
