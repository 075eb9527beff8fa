"""Template tags of the pages: post text as safe HTML, weighted length and the deal card slot."""

from typing import Any

from django import template
from django.conf import settings
from django.utils.safestring import SafeString, mark_safe

from weituan.core.text import weighted_length as text_weighted_length
from weituan.microblog.queries.bios import bio_html_of
from weituan.microblog.queries.post_links import post_short_links
from weituan.microblog.text import render_html, render_inline_html
from weituan.web.deal_cards import deal_card_for

register = template.Library()


@register.filter
def post_html(text: str | None, post_id: int | None = None) -> SafeString:
    """Post text escaped, with links, @mentions and #topics# linkified (render_html builds every tag).

    Given the post's id (`{{ post.text|post_html:post.id }}`), its URLs link to their short links.
    """
    text = text or ""
    links = dict(post_short_links(int(post_id), text)) if post_id else None
    return mark_safe(render_html(text, short_links=links))  # noqa: S308 - render_html escapes every piece


@register.filter
def shown_post_html(view: Any) -> SafeString:
    """A hydrated post's text as `post_html` renders it, with its repost chain as its reader is shown
    it (`PostView.shown_text`: hops by accounts hidden from them left out, deleted hops marked)."""
    links = dict(post_short_links(view.id, view.post.text))  # the post's links are those of all its text
    return mark_safe(render_html(view.shown_text, short_links=links))  # noqa: S308 - render_html escapes every piece


@register.filter
def field_value_html(value: str | None) -> SafeString:
    """A profile field's value escaped, its links and #topics# linkified as in a post (one line)."""
    return mark_safe(render_inline_html(value or ""))  # noqa: S308 - render_inline_html escapes every piece


@register.filter
def bio_html(person: Any) -> SafeString:
    """A profile's bio as HTML paragraphs, linkified as a post is (see `bio_html_of`: an @name is a link
    only when its account exists)."""
    return mark_safe(bio_html_of(person))  # noqa: S308 - render_html escapes every piece


@register.filter
def weighted_length(text: str | None) -> int:
    return text_weighted_length(text or "")


@register.simple_tag
def post_max_length() -> int:
    return int(settings.POST_MAX_WEIGHTED_LENGTH)


@register.inclusion_tag("web/_deal_card.html", takes_context=True)
def deal_card(context: template.Context, deal_id: int | None, via: int | None = None) -> dict[str, Any]:
    """The deal announced by a post, when there is one and the deals app can describe it. Shown in the
    post `via` (an original, or a repost showing its original's deal), the card leads through that
    post's author's own link, so a click on it is credited to that hop."""
    request = context.get("request")
    viewer = getattr(request, "user", None)
    if viewer is not None and not viewer.is_authenticated:
        viewer = None
    return {"card": deal_card_for(deal_id, viewer), "via": via}
