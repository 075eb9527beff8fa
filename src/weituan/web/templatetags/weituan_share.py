"""Template tags of the share control on post cards."""

from typing import Any

from django import template

register = template.Library()


@register.filter
def shareable_by(view: Any, user: Any) -> bool:
    """Whether `user` may ask for their own link to the post: signed in, the post live and not a
    comment, and not someone else's followers-only post (those cannot be reposted either)."""
    if user is None or not user.is_authenticated or view.is_deleted or view.post.kind == "comment":
        return False
    return bool(view.post.visibility != "private" or view.post.author_id == user.pk)


@register.inclusion_tag("web/_share_control.html", takes_context=True)
def share_control(context: template.Context, view: Any) -> dict[str, Any]:
    """The "share link" button of a post card, for a viewer who may share the post.

    Drawing it writes nothing: the link is made when the button asks for it.
    """
    request = context.get("request")
    return {"shown": shareable_by(view, getattr(request, "user", None)), "post_id": view.id}
