"""The share control of a post: the viewer's own short link to it, made when they ask for it.

Each sharer gets their own link per post, so a repost hop carries its own code and a click on it is
credited to that hop (its depth in the repost tree) and that reposter. A post that carries a deal leads
to the deal; any other to the post's page. Links are made on request, not when a card is drawn, so
reading a timeline never writes.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from weituan.core.errors import ServiceError
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
