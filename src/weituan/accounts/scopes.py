"""OAuth scopes as Mastodon defines them, and whether the scopes of a token allow an endpoint.

An endpoint names the scopes any one of which lets a token in (Mastodon's `doorkeeper_authorize!`),
usually a top-level scope and its granular part: `("write", "write:statuses")`. A top-level scope covers
each granular one under it, and the old `follow` scope covers the six relation scopes.
"""

from collections.abc import Iterable

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
