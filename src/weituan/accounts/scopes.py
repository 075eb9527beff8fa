"""OAuth scopes as Mastodon defines them, and whether the scopes of a token allow an endpoint.

An endpoint names the scopes any one of which lets a token in (Mastodon's `doorkeeper_authorize!`),
usually a top-level scope and its granular part: `("write", "write:statuses")`. A top-level scope covers
each granular one under it, and the old `follow` scope covers the six relation scopes.
"""

from collections.abc import Iterable

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

TOP_SCOPES = ("read", "write", "follow", "push", "profile")
GRANULAR_SCOPES = frozenset(
    {
        "read:accounts",
        "read:blocks",
        "read:bookmarks",
        "read:favourites",
        "read:filters",
        "read:follows",
        "read:lists",
        "read:mutes",
        "read:notifications",
        "read:search",
        "read:statuses",
        "write:accounts",
        "write:blocks",
        "write:bookmarks",
        "write:conversations",
        "write:favourites",
        "write:filters",
        "write:follows",
        "write:lists",
        "write:media",
        "write:mutes",
        "write:notifications",
        "write:reports",
        "write:statuses",
        "admin:read",
        "admin:write",
        "admin:read:accounts",
        "admin:write:accounts",
        "admin:read:reports",
        "admin:write:reports",
    }
)
# What the deprecated `follow` scope stands for.
FOLLOW_COVERS = frozenset(
    {"read:blocks", "read:follows", "read:mutes", "write:blocks", "write:follows", "write:mutes"}
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def scope_known(name: str) -> bool:
    return name in TOP_SCOPES or name in GRANULAR_SCOPES


def scope_covered(granted: Iterable[str], needed: str) -> bool:
    """Whether a token holding `granted` may act under `needed`."""
    held = set(granted)
    if needed in held:
        return True
    if needed in FOLLOW_COVERS and "follow" in held:
        return True
    # `read` covers `read:statuses`; `admin:read` covers `admin:read:accounts`.
    parts = needed.split(":")
    return any(":".join(parts[:cut]) in held for cut in range(1, len(parts)))


def scopes_allow(granted: str, any_of: Iterable[str]) -> bool:
    """Whether the space-separated `granted` scopes cover at least one of `any_of`."""
    held = granted.split()
    return any(scope_covered(held, needed) for needed in any_of)


def default_scopes(method: str) -> tuple[str, ...]:
    """What an endpoint that names no scopes needs: `read` to look, `write` to change anything."""
    return ("read",) if method.upper() in SAFE_METHODS else ("write",)


# What a person is told an application will be able to do with each scope, on the authorization page.
SCOPE_DESCRIPTIONS: dict[str, Promise] = {
    "read": _("Read everything in your account: posts, lists, follows, notifications and more"),
    "write": _("Change everything in your account: post, follow, edit your profile and more"),
    "follow": _("Follow, unfollow, block and mute accounts, and see whom you follow, block and mute"),
    "push": _("Receive your push notifications"),
    "profile": _("See your profile only (your name, picture and bio)"),
    "read:accounts": _("See accounts' details"),
    "read:blocks": _("See whom you have blocked"),
    "read:bookmarks": _("See your bookmarks"),
    "read:favourites": _("See the posts you liked"),
    "read:filters": _("See your filters"),
    "read:follows": _("See whom you follow"),
    "read:lists": _("See your lists"),
    "read:mutes": _("See whom you have muted"),
    "read:notifications": _("See your notifications"),
    "read:search": _("Search on your behalf"),
    "read:statuses": _("See all posts, including your private ones"),
    "write:accounts": _("Change your profile"),
    "write:blocks": _("Block accounts"),
    "write:bookmarks": _("Bookmark posts"),
    "write:conversations": _("Mute and delete conversations"),
    "write:favourites": _("Like posts"),
    "write:filters": _("Create and change filters"),
    "write:follows": _("Follow and unfollow accounts"),
    "write:lists": _("Create and change lists"),
    "write:media": _("Upload pictures"),
    "write:mutes": _("Mute accounts and conversations"),
    "write:notifications": _("Clear your notifications"),
    "write:reports": _("Report other accounts"),
    "write:statuses": _("Publish and delete posts"),
    "admin:read": _("Read all data on the server (administrators)"),
    "admin:write": _("Change any data on the server (administrators)"),
    "admin:read:accounts": _("Read private details of every account (administrators)"),
    "admin:write:accounts": _("Moderate accounts (administrators)"),
    "admin:read:reports": _("Read every report (administrators)"),
    "admin:write:reports": _("Act on reports (administrators)"),
}


def scope_description(name: str) -> str:
    """The translated sentence saying what `name` lets an application do (the name itself if unknown)."""
    description = SCOPE_DESCRIPTIONS.get(name)
    return str(description) if description is not None else name
