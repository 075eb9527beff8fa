"""The share control of a deal post: the viewer's own short link to it, made when they ask for it.

Each sharer gets their own link per post, so a repost hop carries its own code and a click on it is
credited to that hop (its depth in the repost tree) and that reposter. Links are made on request, not
when a card is drawn, so reading a timeline never writes.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from weituan.core.errors import ServiceError
from weituan.microblog.queries.posts import post_get_for_user
from weituan.tracking import facade as tracking
from weituan.web.deal_cards import deal_card_for
from weituan.web.responses import is_htmx

SHARE_CHANNEL = "microblog"


@login_required
@require_GET
def share_link(request: HttpRequest, post_id: int) -> HttpResponse:
    """The viewer's short link to a post that carries a deal (an original deal post or a repost of one)."""
    sharer_id = request.user.pk
    if sharer_id is None:  # login_required has let only signed-in users through
        raise Http404("No such post")
    try:
        post = post_get_for_user(request.user, post_id)
    except ServiceError:
        raise Http404("No such post") from None
    deal_id = post.deal_id
    if deal_id is None and post.root_id is not None:
        try:
            deal_id = post_get_for_user(request.user, post.root_id).deal_id
        except ServiceError:
            deal_id = None
    card = deal_card_for(deal_id, request.user)
    if deal_id is None or card is None:
        raise Http404("This post carries no deal")
    try:
        link = tracking.short_link_for_share(
            sharer_id=sharer_id,
            post_id=post.id,
            target_url=request.build_absolute_uri(card.url),
            channel=SHARE_CHANNEL,
            hop_depth=post.depth,
            deal_id=deal_id,
        )
    except ServiceError:
        raise Http404("This post cannot be shared") from None
    # The short URL on the host the viewer is using, which is the one their friends can reach.
    short_url = request.build_absolute_uri(reverse("tracking:short_link", args=[link.code]))
    context = {"post": post, "card": card, "short_url": short_url, "code": link.code}
    template = "web/_share_link.html" if is_htmx(request) else "web/share_link.html"
    response = render(request, template, context)
    response["Cache-Control"] = "private, no-store"
    return response
