"""Mastodon's quote approvals (QuoteApproval, 4.5) for Weituan statuses: which policies a quote of a
status must satisfy, the entity as a reader who follows nobody sees it, and making it each reader's own.
A status is rendered once for many readers; only `current_user` depends on the reader, and only where a
policy on the way is not public."""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from weituan.accounts.models import QuotePolicy
from weituan.microblog.models import Post, PostKind
from weituan.microblog.queries.posts import PostView
from weituan.microblog.queries.relations import followed_among
from weituan.microblog.services.quotes import quote_policy_for

# Mastodon's QuoteApproval lists by policy; nobody is ever asked to approve by hand on Weituan.
_AUTOMATIC = {QuotePolicy.PUBLIC: ["public"], QuotePolicy.FOLLOWERS: ["followers"], QuotePolicy.NOBODY: []}


def _quote_policy_of(post: Post) -> str:
    if post.kind == PostKind.COMMENT:
        return QuotePolicy.NOBODY
    return quote_policy_for(post.visibility, post.quote_policy)


def quote_requires(view: PostView) -> list[dict[str, str]]:
    """The non-public policies a quote of this status must satisfy: its own, and for a repost its
    original's (a quote of a repost carries the original too), as {account_id, policy}."""
    posts = [view.post]
    if view.post.kind == PostKind.REPOST and view.root is not None:
        posts.append(view.root.post)
    return [
        {"account_id": str(post.author_id), "policy": policy}
        for post in posts
        if (policy := _quote_policy_of(post)) != QuotePolicy.PUBLIC
    ]


def quote_approval(post: Post, requires: list[dict[str, str]]) -> dict[str, Any]:
    """The QuoteApproval entity as a reader who follows nobody sees it: `current_user` is made the
    viewer's own by `quote_approvals_for_viewer` where a policy on the way is not public."""
    public = not requires and post.kind != PostKind.COMMENT
    return {
        "automatic": _AUTOMATIC[QuotePolicy(_quote_policy_of(post))],
        "manual": [],
        "current_user": "automatic" if public else "denied",
    }


def quote_approval_needs_viewer(status: dict[str, Any]) -> bool:
    """Does the status's `quote_approval.current_user` depend on who reads it (a non-public policy on
    the way, and not a comment, which nobody quotes)?"""
    return bool(status["weituan"]["quote_requires"]) and status["in_reply_to_id"] is None


def statuses_nested(status: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The status and the statuses it shows (the one it reblogs, the one it quotes), outermost first."""
    yield status
    if status["reblog"] is not None:
        yield from statuses_nested(status["reblog"])
    quote = status["quote"]
    if quote is not None and quote.get("quoted_status") is not None:
        yield from statuses_nested(quote["quoted_status"])


# What quoting a post needs of its reader, one entry per policy on the way that is not public: (the
# author's id, whether that author's followers may quote; else only the author may).
QuoteRequirement = tuple[int, bool]


def quote_requirements(status: dict[str, Any]) -> tuple[QuoteRequirement, ...]:
    """The status's `weituan.quote_requires` as QuoteRequirements."""
    return tuple(
        (int(required["account_id"]), required["policy"] == QuotePolicy.FOLLOWERS)
        for required in status["weituan"]["quote_requires"]
    )


def quotable_posts(requirements: Mapping[int, Sequence[QuoteRequirement]], viewer_id: int) -> set[int]:
    """Those of the posts (each with what quoting it needs) that the viewer may quote: every author on
    the way is the viewer, or lets followers quote and is followed by the viewer. One query for the
    follows, none when no followers policy is among them."""
    authors = {
        author_id
        for needs in requirements.values()
        for author_id, followers in needs
        if followers and author_id != viewer_id
    }
    followed = followed_among(viewer_id, authors) if authors else set()
    return {
        post_id
        for post_id, needs in requirements.items()
        if all(
            author_id == viewer_id or (followers and author_id in followed) for author_id, followers in needs
        )
    }


def quote_approvals_for_viewer(statuses: Sequence[dict[str, Any]], viewer_id: int | None) -> None:
    """Make `quote_approval.current_user` the viewer's in these statuses and those they nest, where it
    depends on the reader. Each level must be the caller's own dict (its `quote_approval` is replaced,
    never changed in place, so a kept rendering it was copied from is untouched)."""
    needing = [
        status for top in statuses for status in statuses_nested(top) if quote_approval_needs_viewer(status)
    ]
    if not needing:
        return
    quotable = (
        quotable_posts({int(status["id"]): quote_requirements(status) for status in needing}, viewer_id)
        if viewer_id is not None
        else set()
    )
    for status in needing:
        if viewer_id is None:
            current = "unknown"
        else:
            current = "automatic" if int(status["id"]) in quotable else "denied"
        status["quote_approval"] = {**status["quote_approval"], "current_user": current}
