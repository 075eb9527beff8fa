"""Profile pages (/@name), follower and following lists, and follow / block / mute from the browser."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from weituan.accounts.profile_fields import profile_fields_of
from weituan.accounts.queries import user_by_username, users_by_ids
from weituan.core.errors import NotFound, ServiceError, ValidationFailed
from weituan.core.ratelimit import user_relations_hit
from weituan.microblog.queries.pins import pinned_post_ids
from weituan.microblog.queries.posts import posts_hydrate
from weituan.microblog.queries.relations import followers_page, following_page, relationships
from weituan.microblog.services.relations import (
    block_create,
    block_delete,
    follow_create,
    follow_delete,
    mute_create,
    mute_delete,
)
from weituan.microblog.stats import account_counts
from weituan.microblog.timelines.queries import user_timeline_ids
from weituan.tracking import facade as tracking
from weituan.web.impressions import shown_in_timeline
from weituan.web.responses import is_htmx, query_id, safe_next, service_error_response
from weituan.web.views import PAGE_SIZE, more_url
from weituan.web.views_lists import list_membership_context

PEOPLE_PER_PAGE = 30


def _viewer(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def _relation(viewer: Any, person: Any) -> dict[str, Any] | None:
    """How the viewer stands to `person` (Mastodon's Relationship), None for oneself or a visitor."""
    if viewer is None or viewer.pk == person.pk:
        return None
    return relationships(viewer.pk, [person.pk])[0]


@require_GET
def profile(request: HttpRequest, username: str) -> HttpResponse:
    """An account's header (avatar, name, V badge, bio, counts, relation buttons) and its posts."""
    viewer = _viewer(request)
    try:
        person = user_by_username(username)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    max_id = query_id(request, "max_id")
    context = _profile_posts(request, viewer, person, max_id=max_id)
    if max_id is not None and is_htmx(request):
        return render(request, "microblog/_post_list.html", context)
    context.update(
        person=person,
        profile_fields=profile_fields_of(person),
        counts=account_counts([person.pk])[person.pk],
        relation=_relation(viewer, person),
        list_groups=list_membership_context(viewer, person)["groups"],
    )
    return render(request, "web/profile.html", context)


def _profile_posts(request: HttpRequest, viewer: Any, person: Any, *, max_id: int | None) -> dict[str, Any]:
    """The profile's page of posts as `viewer` may see them (none of an account blocked either way):
    on the first page its pinned posts (置顶) come first, and they are not shown again among the rest."""
    ids = user_timeline_ids(
        person.pk, viewer_id=viewer.pk if viewer else None, max_id=max_id, limit=PAGE_SIZE
    )
    page_url = reverse("web:profile", args=[person.username])
    pinned_ids = pinned_post_ids(person.pk, viewer)
    pinned = posts_hydrate(pinned_ids, viewer) if max_id is None else []
    shown_first = set(pinned_ids)
    listed = [post_id for post_id in ids if post_id not in shown_first]
    views = shown_in_timeline(request, pinned + posts_hydrate(listed, viewer), "account")
    return {
        # Split by post, not by count: the reader's filters may have left some of either out.
        "pinned_views": [view for view in views if view.id in shown_first],
        "views": [view for view in views if view.id not in shown_first],
        "more_url": more_url(page_url, ids),
    }


def _people(request: HttpRequest, username: str, *, followers: bool) -> HttpResponse:
    viewer = _viewer(request)
    try:
        person = user_by_username(username)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    max_id = query_id(request, "max_id")
    reader = followers_page if followers else following_page
    rows = reader(person.pk, max_id=max_id, limit=PEOPLE_PER_PAGE)
    found = users_by_ids([row.user_id for row in rows])
    people = [found[row.user_id] for row in rows if row.user_id in found]
    relations = (
        {int(rel["id"]): rel for rel in relationships(viewer.pk, [p.pk for p in people if p.pk != viewer.pk])}
        if viewer is not None
        else {}
    )
    name = "web:followers" if followers else "web:following"
    context: dict[str, Any] = {
        "person": person,
        "entries": [{"person": p, "relation": relations.get(p.pk)} for p in people],
        "more_url": more_url(
            reverse(name, args=[person.username]), [row.cursor for row in rows], PEOPLE_PER_PAGE
        ),
        "followers": followers,
    }
    if max_id is not None and is_htmx(request):
        return render(request, "web/_people_list.html", context)
    return render(request, "web/people.html", context)


@require_GET
def followers(request: HttpRequest, username: str) -> HttpResponse:
    return _people(request, username, followers=True)


@require_GET
def following(request: HttpRequest, username: str) -> HttpResponse:
    return _people(request, username, followers=False)


def _follow(viewer: Any, person_id: int, visitor_id: str) -> object:
    return follow_create(follower=viewer, followee_id=person_id, visitor_id=visitor_id)


def _unfollow(viewer: Any, person_id: int, visitor_id: str) -> object:
    return follow_delete(follower=viewer, followee_id=person_id)


def _block(viewer: Any, person_id: int, visitor_id: str) -> object:
    return block_create(blocker=viewer, blocked_id=person_id)


def _unblock(viewer: Any, person_id: int, visitor_id: str) -> object:
    return block_delete(blocker=viewer, blocked_id=person_id)


def _mute(viewer: Any, person_id: int, visitor_id: str) -> object:
    return mute_create(muter=viewer, muted_id=person_id)


def _unmute(viewer: Any, person_id: int, visitor_id: str) -> object:
    return mute_delete(muter=viewer, muted_id=person_id)


# Each takes the viewer, the account and the viewer's visitor id (a follow's event carries it).
RELATION_ACTIONS: dict[str, Callable[[Any, int, str], object]] = {
    "follow": _follow,
    "unfollow": _unfollow,
    "block": _block,
    "unblock": _unblock,
    "mute": _mute,
    "unmute": _unmute,
}


def _relation_note(action: str) -> str:
    notes = {
        "follow": _("Followed."),
        "unfollow": _("Unfollowed."),
        "block": _("Blocked. You will not see each other's posts."),
        "unblock": _("Unblocked."),
        "mute": _("Muted. Their posts are hidden from you."),
        "unmute": _("Unmuted."),
    }
    return notes[action]


@login_required
@require_POST
def relation_change(request: HttpRequest, username: str) -> HttpResponse:
    """Follow, unfollow, block, unblock, mute or unmute the account (the `action` field says which)."""
    page_url = reverse("web:profile", args=[username])
    try:
        person = user_by_username(username)
        action = RELATION_ACTIONS.get(request.POST.get("action", ""))
        if action is None:
            raise ValidationFailed("Unknown action", code="invalid_action")
        user_relations_hit(request.user)
        action(request.user, person.pk, tracking.visitor_id_of(request))
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    relation = _relation(request.user, person)
    note = _relation_note(request.POST["action"])
    if relation is not None and relation["requested"]:
        note = _("Follow request sent. You will follow them once they approve it.")
    if is_htmx(request):
        compact = request.POST.get("compact") == "1"
        context: dict[str, Any] = {
            "person": person,
            "relation": relation,
            "compact": compact,
            "flash_note": note,
            "flash_oob": True,
        }
        if not compact:
            # The full controls are the profile's, whose follower count changes with a follow.
            context["followers_count"] = account_counts([person.pk])[person.pk].followers
            if request.POST["action"] in ("block", "unblock"):
                # Its posts go (or come back) with the block, without a reload.
                context.update(_profile_posts(request, request.user, person, max_id=None))
                context["profile_posts_oob"] = True
        return render(request, "web/_relation_response.html", context)
    messages.success(request, note)
    return HttpResponseRedirect(safe_next(request, page_url))
