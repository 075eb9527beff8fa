"""How pages answer: telling htmx requests from full-page ones, showing service errors, reading paging ids."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.views.csrf import csrf_failure as csrf_failure_page

from weituan.core.errors import ServiceError
from weituan.microblog.services.lists import LIST_MEMBERS_MAX, LIST_TITLE_MAX, LISTS_MAX
from weituan.microblog.services.pins import PINS_MAX

# Services speak English; the codes a person is likely to meet get a translated sentence here.
# Anything else falls back to the service's own message, which is always human-readable.
ERROR_MESSAGES: dict[str, Any] = {
    "not_found": _("That no longer exists."),
    "account_not_found": _("No such account."),
    "post_deleted": _("That post has been deleted."),
    "forbidden": _("You are not allowed to do that."),
    "not_author": _("Only the author can delete this post."),
    "blocked": _("You cannot interact with this account."),
    "rate_limited": _("You are doing that too often. Please wait a moment."),
    "empty_post": _("Write something first."),
    "post_too_long": _("The post is too long."),
    "cannot_follow_self": _("You cannot follow yourself."),
    "cannot_block_self": _("You cannot block yourself."),
    "cannot_mute_self": _("You cannot mute yourself."),
    "cannot_repost_comment": _("A comment cannot be reposted."),
    "not_repostable": _("A followers-only post cannot be reposted."),
    "quote_not_allowed": _("The author does not allow quotes of this post: repost it without a comment."),
    "not_a_quote": _("That post does not quote yours."),
    "invalid_quote_policy": _("Choose who may quote: anyone, followers or only you."),
    "invalid_reply": _("That comment does not belong to this post."),
    "invalid_image": _("That file is not an image we can use."),
    "image_too_large": _("That image is too large."),
    "too_many_media": _("A post can carry at most 9 images."),
    "invalid_media": _("Some of the images could not be attached."),
    "query_too_long": _("The search is too long."),
    "invalid_action": _("Unknown action."),
    "pin_not_own": _("You can only pin your own posts."),
    "not_editable": _("A repost without a comment has nothing to edit."),
    "pin_comment": _("A comment cannot be pinned."),
    "pin_reblog": _("A repost without a comment cannot be pinned."),
    "pin_limit": format_lazy(_("You can pin at most {count} posts: unpin one first."), count=PINS_MAX),
    "title_blank": _("Give the group a name."),
    "title_too_long": format_lazy(_("A group's name is at most {count} characters."), count=LIST_TITLE_MAX),
    "list_limit": format_lazy(_("You can keep at most {count} groups: delete one first."), count=LISTS_MAX),
    "list_members_limit": format_lazy(
        _("A group holds at most {count} accounts: remove some first."), count=LIST_MEMBERS_MAX
    ),
    "not_following": _("Only people you follow can be added to a group."),
    "filter_keyword_blank": _("Type a word to mute first."),
    "filter_keyword_length": _("A muted word is at most 100 characters."),
    "filter_title_blank": _("Type a word to mute first."),
    "filter_title_length": _("A muted word is at most 100 characters."),
    "filter_context_blank": _("Choose at least one place where the word is muted."),
    "filter_limit": _("You have muted as many words as you can: remove one first."),
}


def is_htmx(request: HttpRequest) -> bool:
    """True for requests htmx made (they want a fragment back, not a whole page)."""
    return request.headers.get("HX-Request") == "true"


def error_text(error: ServiceError) -> str:
    return str(ERROR_MESSAGES.get(error.code, error.message))


def safe_next(request: HttpRequest, default: str) -> str:
    """Where to send the browser after a form post: the page it came from, if it is one of ours."""
    candidate = request.POST.get("next") or request.headers.get("Referer") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def service_error_response(request: HttpRequest, error: ServiceError, *, fallback_url: str) -> HttpResponse:
    """Show a service's refusal. htmx gets the message in the page's flash area with the error's own
    status; a plain form post gets a message and is sent back where it came from."""
    text = error_text(error)
    if is_htmx(request):
        response = render(request, "web/_flash.html", {"flash_error": text}, status=error.status)
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    messages.error(request, text)
    return HttpResponseRedirect(safe_next(request, fallback_url))


def query_id(request: HttpRequest, name: str) -> int | None:
    """A paging id (max_id, since_id) from the query string; anything that is not a positive integer is ignored."""
    raw = request.GET.get(name, "")
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if raw.isdecimal():
        value = int(raw)
        return value if 0 < value < 2**63 else None
    return None


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent with a token no longer valid (the reader logged in or out in another tab since the page
    loaded): the site's "form has expired" page, or for a tap on a page (htmx) the same words in its
    flash area, so the page is not replaced by a whole other one inside a post card."""
    if not is_htmx(request):
        return csrf_failure_page(request, reason)
    text = _(
        "The page was open for a long time, or you logged in or out since it loaded. "
        "Reload the page and send the form again."
    )
    response = render(request, "web/_flash.html", {"flash_error": text}, status=403)
    response["HX-Retarget"] = "#flash"
    response["HX-Reswap"] = "innerHTML"
    return response
