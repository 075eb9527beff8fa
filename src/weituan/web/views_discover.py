"""Finding things: topic pages, search over posts, people and topics, and the trending list (热搜)."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from weituan.core.errors import ServiceError
from weituan.microblog.queries.posts import posts_hydrate
from weituan.microblog.queries.relations import relationships
from weituan.microblog.search.queries import Page, accounts_search, posts_search, topics_search
from weituan.microblog.search.trending import trending_topics
from weituan.microblog.timelines.queries import topic_timeline_ids
from weituan.web.impressions import shown_in_timeline
from weituan.web.responses import error_text, is_htmx, query_id
from weituan.web.views import PAGE_SIZE, more_url

SEARCH_TABS = ("posts", "users", "topics")
TRENDING_SHOWN = 50


def _viewer(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


@require_GET
def topic(request: HttpRequest, name: str) -> HttpResponse:
    """The posts using one #topic#, newest first, with infinite scroll."""
    viewer = _viewer(request)
    max_id = query_id(request, "max_id")
    ids = topic_timeline_ids(name, viewer_id=viewer.pk if viewer else None, max_id=max_id, limit=PAGE_SIZE)
    context: dict[str, Any] = {
        "views": shown_in_timeline(request, posts_hydrate(ids, viewer), "topic"),
        "more_url": more_url(reverse("web:topic", args=[name]), ids),
        "topic_name": name,
    }
    if max_id is not None and is_htmx(request):
        return render(request, "microblog/_post_list.html", context)
    return render(request, "web/topic.html", context)


def _offset(request: HttpRequest) -> int:
    raw = request.GET.get("offset", "")
    return min(int(raw), 10_000) if raw.isdecimal() else 0


def _search_results(request: HttpRequest, query: str, tab: str, offset: int) -> dict[str, Any]:
    viewer = _viewer(request)
    page = Page(limit=PAGE_SIZE, offset=offset)
    context: dict[str, Any] = {}
    if tab == "posts":
        ids = posts_search(query=query, viewer=viewer, page=page)
        context["views"] = posts_hydrate(ids, viewer)
        found = len(ids)
    elif tab == "users":
        people = accounts_search(query=query, viewer=viewer, page=page)
        relations = (
            {int(r["id"]): r for r in relationships(viewer.pk, [p.pk for p in people if p.pk != viewer.pk])}
            if viewer is not None
            else {}
        )
        context["entries"] = [{"person": p, "relation": relations.get(p.pk)} for p in people]
        found = len(people)
    else:
        context["topics"] = topics_search(query=query, page=page)
        found = len(context["topics"])
    if found == PAGE_SIZE:
        params: dict[str, str | int] = {"q": query, "type": tab, "offset": offset + PAGE_SIZE}
        context["more_url"] = f"{reverse('web:search')}?{urlencode(params)}"
    return context


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Search with tabs for posts, people and topics; `offset` pages the results (they are ranked, not
    in id order)."""
    query = request.GET.get("q", "").strip()
    tab = request.GET.get("type", "posts")
    if tab not in SEARCH_TABS:
        tab = "posts"
    offset = _offset(request)
    context: dict[str, Any] = {"search_query": query, "tab": tab, "tabs": SEARCH_TABS}
    status = 200
    if query:
        try:
            context.update(_search_results(request, query, tab, offset))
        except ServiceError as error:
            context["search_error"] = error_text(error)
            status = error.status
    if offset and is_htmx(request):
        fragment = {
            "posts": "microblog/_post_list.html",
            "users": "web/_people_list.html",
            "topics": "web/_topic_list.html",
        }[tab]
        return render(request, fragment, context, status=status)
    return render(request, "web/search.html", context, status=status)


@require_GET
def trending(request: HttpRequest) -> HttpResponse:
    return render(request, "web/trending.html", {"trends": trending_topics(limit=TRENDING_SHOWN)})
