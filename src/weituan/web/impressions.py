"""The posts of a timeline page as shown to the person reading it, each shown post an impression."""

from typing import Any

from django.http import HttpRequest

from weituan.microblog.queries.posts import PostView
from weituan.tracking import facade as tracking


def shown_in_timeline(request: HttpRequest, views: list[PostView], timeline: str) -> list[PostView]:
    """`views`, after recording their impressions for the reader (the user, and the visitor cookie)."""
    user: Any = request.user
    tracking.impressions_record(
        post_ids=[view.id for view in views],
        user_id=user.pk if user.is_authenticated else None,
        visitor_id=tracking.visitor_id_of(request),
        timeline=timeline,
    )
    return views
