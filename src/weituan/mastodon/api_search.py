"""Mastodon API: search over accounts, statuses and hashtags.

`GET /api/v2/search` answers with the Search entity `{accounts, statuses, hashtags}`; `type` narrows it
to one list. `GET /api/v1/search` is the older form some clients still try, with hashtags as plain names.

With `resolve=true`, a query that is the URL of a status or a profile on this site answers that status
or account alone, as Mastodon does: it is how clients open a link to a post in the app (the user taps
one, or pastes it in the search box).
"""

from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.urls import Resolver404, resolve
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field
from pydantic.config import JsonDict

from weituan.accounts.auth import request_user
from weituan.accounts.queries import user_by_username
from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.mastodon.api_trends import tag_json
from weituan.mastodon.endpoint_auth import READ_SEARCH
from weituan.mastodon.pagination import MAX_LIMIT, page_params
from weituan.mastodon.serializers_accounts import accounts_json
from weituan.mastodon.serializers_statuses import statuses_json
from weituan.microblog.queries.posts import post_view_for_user, posts_hydrate
from weituan.microblog.search.queries import Page, accounts_search, posts_search, topics_search
from weituan.microblog.search.trending import topics_history

router = Router(tags=["mastodon:search"])
router_v2 = Router(tags=["mastodon:v2"])


# Mastodon's ids are strings; a cursor must be a whole number (else `invalid_cursor`).
ID_TEXT: JsonDict = {"pattern": "^[0-9]*$"}


class SearchQuery(Schema):
    q: str = ""
    type: Literal["accounts", "statuses", "hashtags"] | None = None
    resolve: bool = False
    following: bool = False
    account_id: int | None = Field(None, ge=0, le=MAX_ID)
    exclude_unreviewed: bool = False
    max_id: str | None = Field(None, json_schema_extra=ID_TEXT)
    min_id: str | None = Field(None, json_schema_extra=ID_TEXT)
    limit: int = Field(20, ge=1)
    offset: int = Field(0, ge=0, le=MAX_ID)


def _search(request: HttpRequest, params: SearchQuery) -> dict[str, list[Any]]:
    viewer = request_user(request)
    cursor = page_params(max_id=params.max_id, min_id=params.min_id, limit=params.limit)
    page = Page(
        limit=min(params.limit, MAX_LIMIT), offset=params.offset, max_id=cursor.max_id, min_id=cursor.min_id
    )
    wanted: set[str] = {params.type} if params.type else {"accounts", "statuses", "hashtags"}
    found: dict[str, list[Any]] = {"accounts": [], "statuses": [], "hashtags": []}
    if not params.q.strip():
        return found
    if params.resolve and params.q.strip().startswith(("http://", "https://")):
        if params.offset == 0:
            _found_at_url(request, params.q.strip(), viewer, wanted, found)
        return found
    if "accounts" in wanted:
        if params.following and viewer is None:
            raise ValidationFailed("following=true needs a logged-in account", code="login_required")
        users = accounts_search(query=params.q, viewer=viewer, page=page, following_only=params.following)
        found["accounts"] = accounts_json(users, request)
    if "statuses" in wanted:
        post_ids = posts_search(query=params.q, viewer=viewer, page=page, author_id=params.account_id)
        found["statuses"] = statuses_json(posts_hydrate(post_ids, viewer), request)
    if "hashtags" in wanted:
        topics = topics_search(query=params.q, page=page)
        histories = topics_history([topic.pk for topic in topics], now=timezone.now())
        found["hashtags"] = [
            tag_json(
                topic_id=topic.pk,
                name=topic.display or topic.name,
                key=topic.name,
                history=histories[topic.pk],
                request=request,
                following=False if viewer is not None else None,
            )
            for topic in topics
        ]
    return found


def _found_at_url(
    request: HttpRequest, url: str, viewer: Any, wanted: set[str], found: dict[str, list[Any]]
) -> None:
    """Put in `found` the status or account that `url` names on this site (`/@name/<id>`, `/p/<id>`,
    `/@name`), when the viewer may see it. Other sites' URLs find nothing: Weituan does not federate."""
    parts = urlsplit(url)
    if parts.netloc.casefold() not in {
        urlsplit(settings.SITE_URL).netloc.casefold(),
        request.get_host().casefold(),
    }:
        return
    try:
        match = resolve(unquote(parts.path))
    except Resolver404:
        return
    try:
        if match.view_name in ("microblog:permalink", "microblog:post") and "statuses" in wanted:
            view = post_view_for_user(viewer, int(match.kwargs["post_id"]))
            named = match.kwargs.get("username")
            if named is None or named.casefold() == view.author.username.casefold():
                found["statuses"] = statuses_json([view], request)
        elif match.view_name == "web:profile" and "accounts" in wanted:
            found["accounts"] = accounts_json([user_by_username(match.kwargs["username"])], request)
    except NotFound:
        return


@router_v2.get("/search", auth=READ_SEARCH)
def search_v2(request: HttpRequest, params: Query[SearchQuery]) -> dict[str, list[Any]]:
    return _search(request, params)


@router.get("/search", auth=READ_SEARCH)
def search_v1(request: HttpRequest, params: Query[SearchQuery]) -> dict[str, list[Any]]:
    found = _search(request, params)
    found["hashtags"] = [tag["name"] for tag in found["hashtags"]]
    return found
