"""Template tags of the share control on post cards that carry a deal."""

from typing import Any

from django import template

register = template.Library()


@register.filter
def post_deal_id(view: Any) -> int | None:
    """The deal a post card carries: its own, or for a repost, the deal of the post at its root."""
    deal_id = getattr(view.post, "deal_id", None)
    if deal_id is None and getattr(view, "root", None) is not None:
        deal_id = getattr(view.root.post, "deal_id", None)
    return deal_id


@register.inclusion_tag("web/_share_control.html", takes_context=True)
def share_control(context: template.Context, view: Any) -> dict[str, Any]:
    """The "share link" button for a signed-in viewer on a live post that carries a deal.

    Drawing it writes nothing: the link is made when the button asks for it.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    shown = (
        user is not None and user.is_authenticated and not view.is_deleted and post_deal_id(view) is not None
    )
    return {"shown": shown, "post_id": view.id}
