"""Mastodon API: trends (热搜), one topic as a Tag, and the Tag entity shared with search.

`/api/v1/trends/tags` ranks topics by velocity against their usual level (see
`weituan.microblog.search.trending`); `/api/v1/trends` is the older alias Mastodon still serves.
`/api/v1/trends/statuses` lists the most engaged recent posts; `/api/v1/trends/links` is empty, as
Weituan shows no link preview cards.
"""

from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from weituan.accounts.auth import request_user
from weituan.mastodon.endpoint_auth import ANY_TOKEN
from weituan.mastodon.pagination import set_offset_link_header
from weituan.mastodon.serializers_accounts import absolute_url
from weituan.mastodon.serializers_statuses import statuses_json
from weituan.microblog.queries.posts import posts_hydrate
from weituan.microblog.queries.relations import hidden_author_ids
from weituan.microblog.search.queries import topic_named
from weituan.microblog.search.trending import DayUse, topics_history, trending_post_ids, trending_topics

router = Router(tags=["mastodon:trends"])

TRENDS_DEFAULT_LIMIT = 10
TRENDS_MAX_LIMIT = 20
# Mastodon's bounds for trending statuses, twice those of tags and links.
TRENDING_STATUSES_DEFAULT_LIMIT = 20
TRENDING_STATUSES_MAX_LIMIT = 40


def tag_json(
    *,
    topic_id: int,
    name: str,
    key: str,
    history: list[DayUse],
    request: HttpRequest,
    following: bool | None = None,
) -> dict[str, Any]:
    """Mastodon's Tag entity for the topic stored under `key`, shown as `name`. Counts are strings and
    `day` a UNIX timestamp string, as Mastodon sends them; `following` only for a logged-in viewer."""
    data: dict[str, Any] = {
        "id": str(topic_id),
        "name": name,
        "url": absolute_url(f"/topics/{quote(key, safe='')}", request),
        "history": [
            {"day": str(int(entry.day.timestamp())), "uses": str(entry.uses), "accounts": str(entry.accounts)}
            for entry in history
        ],
    }
    if following is not None:
        data["following"] = following
    return data


@router.get("/tags/{hashtag}", auth=ANY_TOKEN, summary="A topic as Mastodon's Tag")
def tag_get(request: HttpRequest, hashtag: str) -> dict[str, Any]:
    """What a client reads as it opens a topic's timeline (its name, its week of use); 404 for a topic
    nobody has used. Weituan has no followed topics, so `following` is false for a signed-in reader."""
    topic = topic_named(hashtag)
    history = topics_history([topic.pk], now=timezone.now())[topic.pk]
    return tag_json(
        topic_id=topic.pk,
        name=topic.display or topic.name,
        key=topic.name,
        history=history,
        request=request,
        following=False if request_user(request) is not None else None,
    )


class TrendsQuery(Schema):
    limit: int = Field(TRENDS_DEFAULT_LIMIT, ge=1)
    offset: int = Field(0, ge=0)


class TrendingStatusesQuery(Schema):
    limit: int = Field(TRENDING_STATUSES_DEFAULT_LIMIT, ge=1)
    offset: int = Field(0, ge=0)


def _trending_tags(request: HttpRequest, response: HttpResponse, params: TrendsQuery) -> list[dict[str, Any]]:
    viewer = request_user(request)
    limit = min(params.limit, TRENDS_MAX_LIMIT)
    trends = trending_topics(limit=limit, offset=params.offset)
    set_offset_link_header(response, request, offset=params.offset, limit=limit, count=len(trends))
    return [
        tag_json(
            topic_id=trend.topic_id,
            name=trend.display,
            key=trend.name,
            history=trend.history,
            request=request,
            following=False if viewer is not None else None,
        )
        for trend in trends
    ]


@router.get("/trends/tags", auth=ANY_TOKEN)
def trends_tags(
    request: HttpRequest, response: HttpResponse, params: Query[TrendsQuery]
) -> list[dict[str, Any]]:
    return _trending_tags(request, response, params)


@router.get("/trends", auth=ANY_TOKEN)
def trends(request: HttpRequest, response: HttpResponse, params: Query[TrendsQuery]) -> list[dict[str, Any]]:
    return _trending_tags(request, response, params)


@router.get("/trends/statuses", auth=ANY_TOKEN)
def trends_statuses(
    request: HttpRequest, response: HttpResponse, params: Query[TrendingStatusesQuery]
) -> list[dict[str, Any]]:
    """20 unless asked, up to 40, as Mastodon; the page's `Link` goes on by `offset`. A page may come
    short of the limit where the reader hides some authors, but `next` counts the posts read."""
    viewer = request_user(request)
    limit = min(params.limit, TRENDING_STATUSES_MAX_LIMIT)
    post_ids = trending_post_ids(limit=limit, offset=params.offset)
    set_offset_link_header(response, request, offset=params.offset, limit=limit, count=len(post_ids))
    views = posts_hydrate(post_ids, viewer)
    if viewer is not None:
        hidden = hidden_author_ids(viewer.pk)
        views = [view for view in views if view.post.author_id not in hidden]
    return statuses_json(views, request)


@router.get("/trends/links", auth=ANY_TOKEN)
def trends_links(request: HttpRequest, params: Query[TrendsQuery]) -> list[dict[str, Any]]:
    return []
