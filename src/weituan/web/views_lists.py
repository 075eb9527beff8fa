"""Groups (分组) in the pages: the user's groups, making, renaming and deleting one, adding and removing
the accounts they follow (on the group's page, or from a profile's "Add to group"). Each group's
timeline is read on the home page (`?list=`)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from weituan.accounts.queries import user_get, users_by_ids
from weituan.core.errors import NotFound, ServiceError, ValidationFailed
from weituan.core.ratelimit import user_relations_hit
from weituan.microblog.queries.lists import (
    follow_list_for_owner,
    follow_list_member_ids,
    follow_lists_counted,
    follow_lists_of,
    follow_lists_with_account,
)
from weituan.microblog.queries.relations import following_page, is_following
from weituan.microblog.services.lists import (
    LIST_TITLE_MAX,
    LISTS_MAX,
    follow_list_create,
    follow_list_delete,
    follow_list_members_add,
    follow_list_members_remove,
    follow_list_update,
)
from weituan.web.responses import is_htmx, safe_next, service_error_response

# The followed accounts a group's page offers to add, the latest followed first; any other is added
# from its profile.
FOLLOWED_OFFERED = 200


@login_required
@require_http_methods(["GET", "POST"])
def lists_page(request: HttpRequest) -> HttpResponse:
    """The user's groups with how many accounts each holds, and the form making a new one."""
    owner: Any = request.user
    if request.method == "POST":
        try:
            user_relations_hit(owner)
            made = follow_list_create(owner=owner, title=request.POST.get("title", ""))
        except ServiceError as error:
            return service_error_response(request, error, fallback_url=reverse("web:lists"))
        messages.success(
            request, _("Group “%(title)s” made. Add people you follow to it.") % {"title": made.title}
        )
        return HttpResponseRedirect(reverse("web:list_manage", args=[made.pk]))
    context = {
        "counted": follow_lists_counted(owner.pk),
        "title_max": LIST_TITLE_MAX,
        "lists_max": LISTS_MAX,
    }
    return render(request, "web/lists.html", context)


def _owner_id(request: HttpRequest) -> int:
    """The signed-in user's id (the views here require one)."""
    return int(request.user.pk or 0)


@login_required
@require_GET
def list_manage(request: HttpRequest, list_id: int) -> HttpResponse:
    """One group: rename or delete it, its accounts to remove, and the accounts followed to add."""
    try:
        group = follow_list_for_owner(_owner_id(request), list_id)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    member_ids = follow_list_member_ids(group.pk)
    followed = following_page(_owner_id(request), limit=FOLLOWED_OFFERED)
    offered_ids = [row.user_id for row in followed if row.user_id not in set(member_ids)]
    people = users_by_ids([*member_ids, *offered_ids])
    context = {
        "group": group,
        "members": [people[account_id] for account_id in member_ids if account_id in people],
        "offered": [people[account_id] for account_id in offered_ids if account_id in people],
        "title_max": LIST_TITLE_MAX,
    }
    return render(request, "web/list_manage.html", context)


@login_required
@require_POST
def list_rename(request: HttpRequest, list_id: int) -> HttpResponse:
    page_url = reverse("web:list_manage", args=[list_id])
    try:
        user_relations_hit(request.user)
        follow_list_update(owner=request.user, list_id=list_id, title=request.POST.get("title", ""))
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    messages.success(request, _("Group renamed."))
    return HttpResponseRedirect(page_url)


@login_required
@require_POST
def list_delete(request: HttpRequest, list_id: int) -> HttpResponse:
    """The group goes; the accounts in it stay followed."""
    try:
        user_relations_hit(request.user)
        follow_list_delete(owner=request.user, list_id=list_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:lists"))
    messages.success(request, _("Group deleted. You still follow everyone who was in it."))
    if is_htmx(request):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("web:lists")
        return response
    return HttpResponseRedirect(reverse("web:lists"))


def _account_id(request: HttpRequest) -> int:
    raw = request.POST.get("account", "")
    if not raw.isascii() or not raw.isdecimal():
        raise NotFound("No such account", code="account_not_found")
    return int(raw)


@login_required
@require_POST
def list_member_change(request: HttpRequest, list_id: int) -> HttpResponse:
    """Add (`action=add`) or remove (`action=remove`) the `account` of the group. From a profile
    (htmx) the answer is the profile's group control again; otherwise the page it came from."""
    page_url = reverse("web:list_manage", args=[list_id])
    action = request.POST.get("action", "")
    try:
        if action not in ("add", "remove"):
            raise ValidationFailed("Unknown action", code="invalid_action")
        account_id = _account_id(request)
        user_relations_hit(request.user)
        if action == "add":
            follow_list_members_add(owner=request.user, list_id=list_id, account_ids=[account_id])
        else:
            follow_list_members_remove(owner=request.user, list_id=list_id, account_ids=[account_id])
        group = follow_list_for_owner(_owner_id(request), list_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    note = (_("Added to “%(title)s”.") if action == "add" else _("Removed from “%(title)s”.")) % {
        "title": group.title
    }
    if is_htmx(request) and request.POST.get("from") == "profile":
        context = list_membership_context(request.user, user_get(account_id))
        context.update(flash_note=note, flash_oob=True)
        return render(request, "web/_list_membership.html", context)
    messages.success(request, note)
    return HttpResponseRedirect(safe_next(request, page_url))


def list_membership_context(viewer: Any, person: Any) -> dict[str, Any]:
    """What a profile's "Add to group" control shows: the viewer's groups, each marked when it holds
    `person`; nothing when the viewer does not follow them (only followed accounts join a group)."""
    if viewer is None or viewer.pk == person.pk or not is_following(viewer.pk, person.pk):
        return {"person": person, "groups": None}
    holding = {group.pk for group in follow_lists_with_account(viewer.pk, person.pk)}
    groups = [{"group": group, "member": group.pk in holding} for group in follow_lists_of(viewer.pk)]
    return {"person": person, "groups": groups}
