"""The share control of a post: the viewer's own short link to it, made when they ask for it.

Each sharer gets their own link per post, so a repost hop carries its own code and a click on it is
credited to that hop (its depth in the repost tree) and that reposter. A post that carries a deal leads
to the deal; any other to the post's page. Links are made on request, not when a card is drawn, so
reading a timeline never writes. A deal card drawn in a post leads through its author's link too, made
when the card is clicked (`post_deal`), so a reader on the site who buys through someone's repost
credits that repost as a reader from elsewhere would.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from weituan.core.errors import ServiceError
from weituan.microblog.queries.posts import post_get_for_user
from weituan.microblog.services.events import tree_deal_id
from weituan.microblog.services.shares import post_share_link
from weituan.web.deal_cards import deal_card_for
from weituan.web.responses import is_htmx


@login_required
@require_GET
def share_link(request: HttpRequest, post_id: int) -> HttpResponse:
    """The viewer's short link to a post (an original, or a repost: its own hop)."""
    try:
        link = post_share_link(sharer=request.user, post_id=post_id, site_url=request.build_absolute_uri("/"))
    except ServiceError:
        raise Http404("This post cannot be shared") from None
    # The short URL on the host the viewer is using, which is the one their friends can reach.
    short_url = request.build_absolute_uri(reverse("tracking:short_link", args=[link.code]))
    context = {
        "post_id": link.post_id,
        "card": deal_card_for(link.deal_id, request.user),
        "target_url": link.target_url,
        "short_url": short_url,
        "code": link.code,
    }
    template = "web/_share_link.html" if is_htmx(request) else "web/share_link.html"
    response = render(request, template, context)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def post_deal(request: HttpRequest, post_id: int) -> HttpResponse:
    """A click on the deal card shown in a post (an original, or a repost showing its original's deal):
    through the post's author's own link to it, as if the reader had followed the link that author
    shared, so the visit and an order placed from it are credited to that hop of the repost tree."""
    viewer = request.user if request.user.is_authenticated else None
    try:
        post = post_get_for_user(viewer, post_id)
        if tree_deal_id(post.deal_id, post.root_id) is None:
            raise Http404("This post carries no deal")
        link = post_share_link(sharer=post.author, post_id=post.id, site_url=request.build_absolute_uri("/"))
    except ServiceError:
        raise Http404("No such post") from None
    return redirect(reverse("tracking:short_link", args=[link.code]))
