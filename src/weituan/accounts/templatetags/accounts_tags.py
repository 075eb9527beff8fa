"""Template tags for showing people: `{% user_name_badge user %}` (name plus the merchant "V") and
`{% avatar_url user %}`."""

from typing import Any

from django import template
from django.templatetags.static import static

register = template.Library()

DEFAULT_AVATAR = "accounts/default-avatar.png"


@register.inclusion_tag("accounts/_user_name.html")
def user_name_badge(user: Any) -> dict[str, Any]:
    """The display name linked to the profile, followed by the "V" badge for verified merchants."""
    return {"user": user}


@register.simple_tag
def avatar_url(user: Any) -> str:
    """The avatar's URL (relative), or the default picture when the user has none."""
    avatar = getattr(user, "avatar", None)
    return avatar.url if avatar else static(DEFAULT_AVATAR)
