"""The muted words page (屏蔽关键词): the reader's keyword filters, adding a word with where it applies
and whether it folds or hides a post, and removing one."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from weituan.core.errors import ServiceError
from weituan.microblog.models import FilterAction, FilterContext
from weituan.microblog.queries.filters import filters_of
from weituan.microblog.services.filters import filter_create, filter_delete
from weituan.web.responses import is_htmx, service_error_response

CONTEXT_LABELS = {
    FilterContext.HOME: gettext_lazy("Home timeline"),
    FilterContext.NOTIFICATIONS: gettext_lazy("Notifications"),
    FilterContext.PUBLIC: gettext_lazy("Public timelines and topics"),
    FilterContext.THREAD: gettext_lazy("Comments"),
    FilterContext.ACCOUNT: gettext_lazy("Profiles"),
}
# What a new word applies to unless the reader chooses: everywhere but their notifications.
DEFAULT_CONTEXTS = (FilterContext.HOME, FilterContext.PUBLIC, FilterContext.THREAD, FilterContext.ACCOUNT)


def _list_context(owner: Any) -> dict[str, Any]:
    rows = [
        {"filter": row, "labels": [CONTEXT_LABELS[FilterContext(name)] for name in row.contexts]}
        for row in filters_of(owner.pk)
    ]
    return {"rows": rows}


@login_required
@require_GET
def keyword_filters(request: HttpRequest) -> HttpResponse:
    context = {
        **_list_context(request.user),
        "contexts": list(CONTEXT_LABELS.items()),
        "default_contexts": DEFAULT_CONTEXTS,
    }
    return render(request, "web/keyword_filters.html", context)


@login_required
@require_POST
def keyword_filter_add(request: HttpRequest) -> HttpResponse:
    """Add one word as a filter of its own, titled by it. htmx gets the list back; a plain form post
    goes back to the page."""
    page_url = reverse("web:keyword_filters")
    keyword = request.POST.get("keyword", "")
    try:
        filter_create(
            owner=request.user,
            title=keyword,
            contexts=request.POST.getlist("context"),
            action=request.POST.get("filter_action") or FilterAction.WARN,
            keywords=[(keyword, request.POST.get("whole_word") == "1")],
        )
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    if is_htmx(request):
        return render(request, "web/_keyword_filter_list.html", _list_context(request.user))
    messages.success(request, _("Muted “%(word)s”.") % {"word": keyword.strip()})
    return HttpResponseRedirect(page_url)


@login_required
@require_POST
def keyword_filter_remove(request: HttpRequest, filter_id: int) -> HttpResponse:
    page_url = reverse("web:keyword_filters")
    try:
        filter_delete(owner=request.user, filter_id=filter_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    if is_htmx(request):
        return render(request, "web/_keyword_filter_list.html", _list_context(request.user))
    return HttpResponseRedirect(page_url)
