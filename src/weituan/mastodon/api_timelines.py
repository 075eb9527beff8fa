"""Mastodon API: the home, public and tag timelines, paged by id with a `Link` header.

Each endpoint reads one page of post ids and renders them in a fixed number of queries, so the home
timeline costs the same number of queries for 20 statuses as for 40; statuses rendered for an earlier
page and unchanged since are reused (see `home_statuses` and `timeline_statuses_json`).
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from weituan.accounts.auth import request_user, request_viewer, viewer_auth
from weituan.core.front import JSON_CONTENT_TYPE
from weituan.mastodon.endpoint_auth import READ_STATUSES
from weituan.mastodon.home_statuses import home_statuses_body
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request, set_link_header
from weituan.mastodon.request_params import BOOLEAN, TEXT_LIST, mastodon_params, query_documented
from weituan.mastodon.serializers_statuses import timeline_statuses_json
from weituan.mastodon.status_filters import statuses_filtered
from weituan.microblog.models import FilterContext
from weituan.microblog.queries.filters import reader_filters
from weituan.microblog.queries.relations import hidden_author_ids
from weituan.microblog.timelines.home import ReadContext, home_timeline_ids_in, read_context
from weituan.microblog.timelines.queries import public_timeline_ids, topic_timeline_ids
from weituan.tracking import facade as tracking

# Mastodon's `local`: every post here is local (Weituan does not federate), so it changes nothing.
EVERY_POST_LOCAL = {"description": "every post here is local: any value reads the same"}

router = Router(tags=["mastodon:timelines"])


def home_timeline_response(
    request: HttpRequest, viewer_id: int, context: ReadContext | None = None
) -> HttpResponse:
    """The caller's home page asked for by the query string: the Status entities as JSON, and the
    `Link` header. `context` is the reader's read context when already read with the token.

    Shared with the fast path in front of Django (`api_timelines_fast`), so both answer the same bytes.
    """
    page = page_params_from_request(request)
    if context is None:
        context = read_context(viewer_id)
    ids = home_timeline_ids_in(
        viewer_id, context, max_id=page.max_id, since_id=page.since_id, min_id=page.min_id, limit=page.limit
    )
    if context.filtered:
        body = _home_filtered_body(ids, viewer_id, request, context.hidden)
    else:
        body = home_statuses_body(ids, viewer_id, request, context.hidden)
    response = HttpResponse(body, content_type=JSON_CONTENT_TYPE)
    set_link_header(response, request, ids)
    return response


def _home_filtered_body(
    ids: list[int], viewer_id: int, request: HttpRequest, hidden: frozenset[int]
) -> bytes:
    """The home page of a reader with a home keyword filter: the statuses as `home_statuses_body`
    gives them, with `filtered` set, those a hiding filter matches left out (the page comes back
    shorter, its `Link` still going on from the last post read)."""
    from weituan.api import FastJSONRenderer

    statuses = statuses_filtered(
        timeline_statuses_json(ids, viewer_id, request, hidden), reader_filters(viewer_id, FilterContext.HOME)
    )
    tracking.impressions_record(
        post_ids=[int(status["id"]) for status in statuses], user_id=viewer_id, timeline="home"
    )
    body = FastJSONRenderer().render(request, statuses, response_status=200)
    return body if isinstance(body, bytes) else str(body).encode()


def _statuses(
    request: HttpRequest,
    response: HttpResponse,
    ids: list[int],
    viewer: Any,
    timeline: str,
    hidden: frozenset[int],
) -> list[dict[str, Any]]:
    set_link_header(response, request, ids)
    statuses = timeline_statuses_json(ids, viewer.pk if viewer is not None else None, request, hidden)
    statuses = statuses_filtered(
        statuses, reader_filters(viewer.pk if viewer is not None else None, FilterContext.PUBLIC)
    )
    tracking.impressions_record(
        post_ids=[int(status["id"]) for status in statuses],
        user_id=viewer.pk if viewer is not None else None,
        visitor_id=tracking.visitor_id_of(request),
        timeline=timeline,
    )
    return statuses


def _hidden_from(viewer: Any) -> frozenset[int]:
    """The accounts hidden from the viewer (blocks either way, mutes), which the page leaves out and
    whose comments the chains of its reposts leave out; read once for both."""
    return frozenset(hidden_author_ids(viewer.pk)) if viewer is not None else frozenset()


@router.get(
    "/timelines/home", openapi_extra=PAGE_QUERY, auth=viewer_auth, summary="The caller's home timeline"
)
def home(request: HttpRequest) -> HttpResponse:
    return home_timeline_response(request, request_viewer(request).pk)


@router.get(
    "/timelines/public",
    openapi_extra=query_documented(
        {"local": EVERY_POST_LOCAL, "remote": BOOLEAN, "only_media": BOOLEAN}, PAGE_QUERY
    ),
    auth=READ_STATUSES,
    summary="Every public post",
)
def public(request: HttpRequest, response: HttpResponse) -> list[dict[str, Any]]:
    viewer = request_user(request)
    params = mastodon_params(request)
    page = page_params_from_request(request)
    only_media = bool(params.flag("only_media"))  # read (and refused if wrong) even when nothing is found
    # Weituan has no federation: every post is local, so `local` changes nothing and `remote` finds none.
    if params.flag("remote"):
        return []
    hidden = _hidden_from(viewer)
    ids = public_timeline_ids(
        viewer_id=viewer.pk if viewer is not None else None,
        hidden=hidden,
        only_media=only_media,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    return _statuses(request, response, ids, viewer, "public", hidden)


@router.get(
    "/timelines/tag/{hashtag}",
    openapi_extra=query_documented(
        {
            "any[]": TEXT_LIST,
            "all[]": TEXT_LIST,
            "none[]": TEXT_LIST,
            "local": EVERY_POST_LOCAL,
            "remote": BOOLEAN,
            "only_media": BOOLEAN,
        },
        PAGE_QUERY,
    ),
    auth=READ_STATUSES,
    summary="Public posts with a topic",
)
def tag(request: HttpRequest, response: HttpResponse, hashtag: str) -> list[dict[str, Any]]:
    """`any[]`, `all[]` and `none[]` widen and narrow the topics as in Mastodon (see `topic_timeline_ids`)."""
    viewer = request_user(request)
    params = mastodon_params(request)
    page = page_params_from_request(request)
    only_media = bool(params.flag("only_media"))  # read (and refused if wrong) even when nothing is found
    # As for the public timeline: every post is local, so `local` changes nothing and `remote` finds none.
    if params.flag("remote"):
        return []
    hidden = _hidden_from(viewer)
    ids = topic_timeline_ids(
        hashtag,
        viewer_id=viewer.pk if viewer is not None else None,
        hidden=hidden,
        any_of=params.texts("any"),
        all_of=params.texts("all"),
        none_of=params.texts("none"),
        only_media=only_media,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    return _statuses(request, response, ids, viewer, "tag", hidden)
