"""The follow requests page: who asked to follow a locked account, approving or turning them down, and
the switch that makes an account approve its followers."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from weituan.accounts.queries import user_by_username, users_by_ids
from weituan.core.errors import ServiceError, ValidationFailed
from weituan.microblog.queries.relations import follow_requests_count, follow_requests_page
from weituan.microblog.services.relations import (
    account_lock_set,
    follow_request_authorize,
    follow_request_reject,
)
from weituan.web.responses import is_htmx, query_id, service_error_response
from weituan.web.views import more_url

REQUESTS_PER_PAGE = 30


@login_required
@require_GET
def follow_requests(request: HttpRequest) -> HttpResponse:
    """The accounts waiting for the user's approval, newest request first."""
    owner: Any = request.user
    max_id = query_id(request, "max_id")
    rows = follow_requests_page(owner.pk, max_id=max_id, limit=REQUESTS_PER_PAGE)
    found = users_by_ids(row.user_id for row in rows)
    context: dict[str, Any] = {
        "requesters": [found[row.user_id] for row in rows if row.user_id in found],
        "more_url": more_url(reverse("web:follow_requests"), [row.cursor for row in rows], REQUESTS_PER_PAGE),
    }
    if max_id is not None and is_htmx(request):
        return render(request, "web/_follow_request_list.html", context)
    context["pending"] = follow_requests_count(owner.pk)
    return render(request, "web/follow_requests.html", context)


@login_required
@require_POST
def follow_request_decide(request: HttpRequest, username: str) -> HttpResponse:
    """Approve or turn down one request (the `decision` field says which)."""
    page_url = reverse("web:follow_requests")
    decision = request.POST.get("decision", "")
    try:
        if decision not in ("authorize", "reject"):
            raise ValidationFailed("Unknown decision", code="invalid_decision")
        requester = user_by_username(username)
        decide = follow_request_authorize if decision == "authorize" else follow_request_reject
        decide(owner=request.user, requester_id=requester.pk)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    note = _("Approved.") if decision == "authorize" else _("Request declined.")
    if is_htmx(request):
        return render(request, "web/_follow_request_done.html", {"requester": requester, "flash_note": note})
    messages.success(request, note)
    return HttpResponseRedirect(page_url)


@login_required
@require_POST
def account_lock(request: HttpRequest) -> HttpResponse:
    """Turn approving followers on or off; turning it off approves everyone still waiting."""
    locked = request.POST.get("locked") == "1"
    accepted = account_lock_set(owner=request.user, locked=locked)
    if locked:
        messages.success(request, _("New followers now need your approval."))
    else:
        messages.success(
            request, _("Anyone can follow you now; %(count)s waiting were approved.") % {"count": accepted}
        )
    return HttpResponseRedirect(reverse("web:follow_requests"))
