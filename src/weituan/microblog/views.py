"""Browser pages and actions of posts: compose, the post page, like, repost, comment and delete.

Actions answer htmx with the re-drawn post card (or comment list; on a post's page a repost of it also
re-draws the page's repost list and repost tree) and a line in the page's flash area;
a plain form post (no JavaScript) is redirected back with a message. Refusals from the services are
shown the same way, never as a server error.
"""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from weituan.core.errors import NotFound, ServiceError, ValidationFailed
from weituan.core.ratelimit import user_writes_hit
from weituan.microblog.models import PostKind
from weituan.microblog.queries.posts import PostView, comments_page, post_view_for_user, posts_hydrate
from weituan.microblog.queries.reposts import RepostTree, repost_tree, reposted_by
from weituan.microblog.services.edits import post_edit
from weituan.microblog.services.interactions import (
    bookmark_add,
    bookmark_remove,
    comment_create,
    like_add,
    like_remove,
)
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.pins import pin_add, pin_remove
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.services.quotes import quote_policy_set, quote_revoke
from weituan.tracking.facade import visitor_id_of
from weituan.web.responses import error_text, is_htmx, query_id, safe_next, service_error_response
from weituan.web.views import home_page

MAX_IMAGES = 9
COMMENTS_PER_PAGE = 20
REPLIES_SHOWN = 3
REPLIES_PER_PAGE = 50
TREE_NODES_SHOWN = 300
REPOSTERS_SHOWN = 20


def _write_counted(request: HttpRequest) -> None:
    """Count one write of the signed-in user (RateLimited beyond the budget their API writes share)."""
    user_writes_hit(request.user)


def _viewer(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def _with_flash(request: HttpRequest, template: str, context: dict[str, Any], note: str) -> HttpResponse:
    """The fragment, plus `note` swapped into the flash area out of band."""
    return render(request, template, {**context, "flash_note": note, "flash_oob": True})


def _card_response(request: HttpRequest, post_id: int, note: str) -> HttpResponse:
    """The re-drawn card of `post_id` as the viewer now sees it."""
    views = posts_hydrate([post_id], request.user)
    if not views:
        raise NotFound("Record not found")
    return _with_flash(request, "microblog/_post_card_response.html", {"view": views[0]}, note)


def _done(request: HttpRequest, post_id: int, note: str, fallback: str) -> HttpResponse:
    if is_htmx(request):
        return _card_response(request, post_id, note)
    messages.success(request, note)
    return HttpResponseRedirect(safe_next(request, fallback))


def _on_page_of(request: HttpRequest, post_id: int) -> bool:
    """True when an htmx request comes from the page of `post_id` (htmx names the page it is on): its
    comment list and counts are to be re-drawn there, and deleting the post itself leaves that page."""
    current = request.headers.get("HX-Current-URL", "")
    return is_htmx(request) and urlsplit(current).path == reverse("microblog:post", args=[post_id])


def _comments_response(request: HttpRequest, post_id: int, note: str) -> HttpResponse:
    """The post page's comment list re-drawn (whichever form on the page sent the comment), with the
    post's card and the comment count swapped out of band so the counts agree with the list."""
    threads = _comments_with_replies(request.user, post_id, None)
    views = posts_hydrate([post_id], request.user)
    context = {
        "threads": threads,
        "post_id": post_id,
        "more_comments": len(threads) == COMMENTS_PER_PAGE,
        "view": views[0] if views else None,
    }
    response = _with_flash(request, "microblog/_comments_response.html", context, note)
    response["HX-Retarget"] = "#comments"
    response["HX-Reswap"] = "innerHTML"
    return response


def _uploads(request: HttpRequest) -> list[int]:
    """Store the attached images one by one; each is validated (and resized) by the media service."""
    files = request.FILES.getlist("images")
    if len(files) > MAX_IMAGES:
        raise ValidationFailed(f"At most {MAX_IMAGES} images", code="too_many_media")
    return [media_upload(owner=request.user, upload=upload).id for upload in files]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    """Publish the home page's compose box. The box lives on the home page, so the address itself (typed,
    or reloaded after a refused post) leads there."""
    home = reverse("web:home")
    if request.method != "POST":
        return HttpResponseRedirect(home)
    author: Any = request.user  # logged in (login_required)
    try:
        _write_counted(request)
        post = post_create(
            author=author,
            text=request.POST.get("text", ""),
            media_ids=_uploads(request),
            # The box offers the author's default visibility first; a form without the choice gets it too.
            visibility=request.POST.get("visibility") or author.default_privacy,
            language=author.default_language or getattr(request, "LANGUAGE_CODE", "")[:10],
            quote_policy=request.POST.get("quote_policy") or None,
        )
    except ServiceError as error:
        if is_htmx(request):
            return service_error_response(request, error, fallback_url=home)
        # Without JavaScript the draft comes back in the box, with its length counted.
        messages.error(request, error_text(error))
        return home_page(request, compose_text=request.POST.get("text", ""), status=error.status)
    note = _("Posted.")
    if is_htmx(request):
        views = posts_hydrate([post.id], request.user)
        return _with_flash(request, "microblog/_compose_response.html", {"view": views[0]}, note)
    messages.success(request, note)
    return HttpResponseRedirect(home)


def _nested_tree(tree: RepostTree) -> list[dict[str, Any]]:
    """The flat node list as nested hops (children under their parent), at most TREE_NODES_SHOWN.
    The page's size and depth are the tree's (`tree.size`, `tree.max_depth`), as the API gives them to
    the same reader, not those of the hops shown here when the page cuts the tree short."""
    nodes: dict[int, dict[str, Any]] = {}
    tops: list[dict[str, Any]] = []
    top_depth = tree.nodes[0].depth if tree.nodes else 0
    for node in tree.nodes[1 : TREE_NODES_SHOWN + 1]:
        item: dict[str, Any] = {"node": node, "hop": node.depth - top_depth, "children": []}
        nodes[node.id] = item
        parent = nodes.get(node.parent_id) if node.parent_id is not None else None
        (parent["children"] if parent is not None else tops).append(item)
    return tops


def _comments_with_replies(viewer: Any, post_id: int, max_id: int | None) -> list[dict[str, Any]]:
    comments = comments_page(viewer, post_id, max_id=max_id, limit=COMMENTS_PER_PAGE)
    threads = []
    for comment in comments:
        replies: list[PostView] = []
        if comment.post.comments_count:
            replies = comments_page(viewer, post_id, replies_of=comment.id, limit=REPLIES_SHOWN)
            replies.reverse()  # oldest first under the comment, as Weibo reads
        threads.append({"comment": comment, "replies": replies})
    return threads


@require_GET
def post_permalink(request: HttpRequest, username: str, post_id: int) -> HttpResponse:
    """`/@<author>/<id>`, a status's `url` in the API: the post's page, when the post is that author's."""
    try:
        view = post_view_for_user(_viewer(request), post_id)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    if view.author.username.casefold() != username.casefold():
        return render(request, "web/not_found.html", status=404)
    return HttpResponsePermanentRedirect(reverse("microblog:post", args=[post_id]))


@require_GET
def post_detail(request: HttpRequest, post_id: int) -> HttpResponse:
    """A post, its comments (one level of replies), who reposted it and its repost tree."""
    viewer = _viewer(request)
    try:
        view = post_view_for_user(viewer, post_id)
        if view.post.kind == PostKind.COMMENT:
            # A comment has no page of its own: show the post it is on.
            assert view.post.parent_id is not None
            return HttpResponseRedirect(reverse("microblog:post", args=[view.post.parent_id]))
        threads = _comments_with_replies(viewer, post_id, None)
        reposts = _reposts_context(viewer, post_id)
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    context = {
        "view": view,
        "threads": threads,
        "more_comments": len(threads) == COMMENTS_PER_PAGE,
        **reposts,
        "max_length": settings.POST_MAX_WEIGHTED_LENGTH,
    }
    return render(request, "microblog/post_detail.html", context)


def _reposts_context(viewer: Any, post_id: int) -> dict[str, Any]:
    """What the post page's repost list and repost tree show (NotFound when the post is not the
    viewer's to see)."""
    tree = repost_tree(post_id, viewer)
    return {
        "tree": tree,
        "tree_hops": _nested_tree(tree),
        "tree_shown_all": len(tree.nodes) - 1 <= TREE_NODES_SHOWN,
        "reposters": reposted_by(viewer, post_id, limit=REPOSTERS_SHOWN),
    }


def _reposts_response(request: HttpRequest, post_id: int, note: str) -> HttpResponse:
    """After a repost on the page of `post_id`: its card re-drawn (the form's target), with the page's
    repost list and repost tree swapped out of band so they show the new hop, as the counts do."""
    views = posts_hydrate([post_id], request.user)
    if not views:
        raise NotFound("Record not found")
    context = {"view": views[0], **_reposts_context(request.user, post_id)}
    return _with_flash(request, "microblog/_repost_response.html", context, note)


def _replies(request: HttpRequest, post_id: int, comment_id: int) -> HttpResponse:
    """All the replies under one comment, oldest first, in pages of REPLIES_PER_PAGE from the newest:
    the thread under a comment shows only its last few until the reader asks for the rest."""
    try:
        replies = comments_page(
            _viewer(request),
            post_id,
            replies_of=comment_id,
            max_id=query_id(request, "max_id"),
            limit=REPLIES_PER_PAGE,
        )
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    earlier = ""
    if len(replies) == REPLIES_PER_PAGE:
        page = reverse("microblog:comments", args=[post_id])
        earlier = f"{page}?replies_of={comment_id}&max_id={replies[-1].id}"
    replies.reverse()
    context = {"replies": replies, "post_id": post_id, "earlier_url": earlier}
    return render(request, "microblog/_comment_replies.html", context)


@require_GET
def post_comments(request: HttpRequest, post_id: int) -> HttpResponse:
    """The next page of a post's comments (infinite scroll on the post page), or with `replies_of` every
    reply under one of them."""
    replies_of = query_id(request, "replies_of")
    if replies_of is not None:
        return _replies(request, post_id, replies_of)
    max_id = request.GET.get("max_id", "")
    try:
        threads = _comments_with_replies(
            _viewer(request), post_id, int(max_id) if max_id.isdecimal() else None
        )
    except NotFound:
        return render(request, "web/not_found.html", status=404)
    context = {"threads": threads, "post_id": post_id, "more_comments": len(threads) == COMMENTS_PER_PAGE}
    return render(request, "microblog/_comment_threads.html", context)


@login_required
@require_POST
def like(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        like_add(user=request.user, post_id=post_id, visitor_id=visitor_id_of(request))
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Liked."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def unlike(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        like_remove(user=request.user, post_id=post_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Like taken back."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def bookmark(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        bookmark_add(user=request.user, post_id=post_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Bookmarked."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def unbookmark(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        bookmark_remove(user=request.user, post_id=post_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Bookmark removed."), reverse("microblog:post", args=[post_id]))


def _edited_images(request: HttpRequest) -> list[int] | None:
    """The images the edit form asks the post to carry: the ones it showed (`media`, in order) but
    those marked to remove, then the new uploads (stored, validated and resized, as on compose). None
    from a form without the images part: they stay as they are."""
    if not request.POST.get("media_form"):
        return None
    try:
        removed = {int(raw) for raw in request.POST.getlist("remove_media")}
        kept = [media_id for raw in request.POST.getlist("media") if (media_id := int(raw)) not in removed]
    except ValueError:
        raise ValidationFailed("Unknown images", code="invalid_media") from None
    # Counted before anything is stored, so a refused edit leaves no upload behind.
    if len(kept) + len(request.FILES.getlist("images")) > MAX_IMAGES:
        raise ValidationFailed(f"At most {MAX_IMAGES} images", code="too_many_media")
    return kept + _uploads(request)


@login_required
@require_POST
def edit(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        post_edit(
            editor=request.user,
            post_id=post_id,
            text=request.POST.get("text", ""),
            media_ids=_edited_images(request),
        )
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("microblog:post", args=[post_id]))
    return _done(request, post_id, _("Saved."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def pin(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        pin_add(user=request.user, post_id=post_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Pinned to your profile."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def unpin(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        pin_remove(user=request.user, post_id=post_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Unpinned."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def repost(request: HttpRequest, post_id: int) -> HttpResponse:
    try:
        _write_counted(request)
        repost_create(
            reposter=request.user,
            post_id=post_id,
            comment=request.POST.get("comment", ""),
            visitor_id=visitor_id_of(request),
        )
        if _on_page_of(request, post_id):
            return _reposts_response(request, post_id, _("Reposted."))
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, post_id, _("Reposted."), reverse("microblog:post", args=[post_id]))


@login_required
@require_POST
def quote_policy_view(request: HttpRequest, post_id: int) -> HttpResponse:
    """The author changes who may quote one of their posts (quotes made before stay)."""
    page = reverse("microblog:post", args=[post_id])
    try:
        _write_counted(request)
        quote_policy_set(actor=request.user, post_id=post_id, policy=request.POST.get("quote_policy", ""))
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page)
    messages.success(request, _("Saved."))
    return HttpResponseRedirect(page)


@login_required
@require_POST
def quote_revoke_view(request: HttpRequest, post_id: int, quote_id: int) -> HttpResponse:
    """The author of `post_id` removes the quote `quote_id` made of it; the quote's card is re-drawn."""
    try:
        _write_counted(request)
        quote_revoke(actor=request.user, post_id=post_id, quoting_id=quote_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    return _done(request, quote_id, _("Quote removed."), reverse("microblog:post", args=[quote_id]))


@login_required
@require_POST
def comment(request: HttpRequest, post_id: int) -> HttpResponse:
    """Comment on a post (or reply under a comment with `reply_to`). On the post page the comment list
    is re-drawn; anywhere else the post's card is."""
    reply_to = request.POST.get("reply_to", "")
    page_url = reverse("microblog:post", args=[post_id])
    try:
        _write_counted(request)
        comment_create(
            author=request.user,
            post_id=post_id,
            text=request.POST.get("text", ""),
            reply_to_comment_id=int(reply_to) if reply_to.isdecimal() else None,
            visitor_id=visitor_id_of(request),
        )
        if is_htmx(request) and (request.POST.get("render") == "comments" or _on_page_of(request, post_id)):
            return _comments_response(request, post_id, _("Comment posted."))
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=page_url)
    return _done(request, post_id, _("Comment posted."), page_url)


@login_required
@require_POST
def delete(request: HttpRequest, post_id: int) -> HttpResponse:
    """Delete a post, repost or comment; the services allow only its author (or the post's author, for a
    comment on it). Deleted from its own page, the post leaves for the home page; a comment deleted on
    the post's page takes the post's comment counts down with it."""
    try:
        _write_counted(request)
        deleted = post_delete(actor=request.user, post_id=post_id)
    except ServiceError as error:
        return service_error_response(request, error, fallback_url=reverse("web:home"))
    note = _("Deleted.")
    if _on_page_of(request, post_id):
        messages.success(request, note)
        response = HttpResponse(status=200)
        response["HX-Redirect"] = reverse("web:home")
        return response
    commented_id = deleted.parent_id if deleted.kind == PostKind.COMMENT else None
    if commented_id is not None and _on_page_of(request, commented_id):
        views = posts_hydrate([commented_id], request.user)
        context = {"view": views[0] if views else None}
        return _with_flash(request, "microblog/_post_counts_oob.html", context, note)
    if is_htmx(request):
        return render(request, "web/_flash.html", {"flash_note": note, "flash_oob": True})
    messages.success(request, note)
    fallback = reverse("web:home")
    target = safe_next(request, fallback)
    # The page of the deleted post itself is gone; go home instead.
    if reverse("microblog:post", args=[post_id]) in target:
        target = fallback
    return HttpResponseRedirect(target)
