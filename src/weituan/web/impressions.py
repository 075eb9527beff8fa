"""The posts of a timeline page as shown to the person reading it: their keyword filters applied, and
each shown post an impression."""

from typing import Any

from django.http import HttpRequest

from weituan.microblog.models import FilterContext
from weituan.microblog.queries.filters import FilterMatch, reader_filters, view_filter_matches
from weituan.microblog.queries.posts import PostView
from weituan.tracking import facade as tracking

# The filter context of each timeline of the pages.
FILTER_CONTEXTS = {
    "home": FilterContext.HOME,
    "list": FilterContext.HOME,  # a group's timeline is part of home, as Mastodon's lists are
    "public": FilterContext.PUBLIC,
    "topic": FilterContext.PUBLIC,
    "account": FilterContext.ACCOUNT,
}


def views_filtered(reader_id: int | None, views: list[PostView], context: str) -> list[PostView]:
    """`views` without the posts a hiding filter of the reader matches in `context`, and those a warning
    filter matches marked with its keywords (`PostView.filtered_by`), to be folded behind them."""
    filters = reader_filters(reader_id, context)
    if not filters:
        return views
    kept = []
    for view in views:
        matches = view_filter_matches(filters, view)
        if any(match.hides for match in matches):
            continue
        view.filtered_by = _folding_words(matches)
        origin = view.root
        if view.post.kind == "repost" and view.post.comment and origin is not None:
            # The original a quote shows is filtered on its own, as Mastodon filters a quoted status: a
            # warning folds it inside the quote, a hiding filter leaves it out of it.
            found = view_filter_matches(filters, origin)
            origin.filter_hidden = any(match.hides for match in found)
            origin.filtered_by = _folding_words(found)
        kept.append(view)
    return kept


def _folding_words(matches: list[FilterMatch]) -> tuple[str, ...]:
    """What a folded post says it was folded for: the keywords found, or a filter's title when the filter
    names the post itself."""
    return tuple(
        dict.fromkeys(word for match in matches for word in (match.keywords or (match.filter.title,)))
    )


def shown_in_timeline(
    request: HttpRequest, views: list[PostView], timeline: str, *, filtered: bool = True
) -> list[PostView]:
    """`views` as the reader is shown them (see `views_filtered`; `filtered` False when the reader is
    known to have no filter here, so none is read), after recording their impressions for the reader
    (the user, and the visitor cookie)."""
    user: Any = request.user
    reader_id = user.pk if user.is_authenticated else None
    if filtered:
        views = views_filtered(reader_id, views, FILTER_CONTEXTS[timeline])
    tracking.impressions_record(
        post_ids=[view.id for view in views],
        user_id=reader_id,
        visitor_id=tracking.visitor_id_of(request),
        timeline=timeline,
    )
    return views
