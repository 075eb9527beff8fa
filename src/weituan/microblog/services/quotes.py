"""Quote policies: who may quote a post (repost it with a comment of their own), and taking a quote back.

Every post carries a policy, as Mastodon 4.5 has it: `public` (anyone the author has not blocked),
`followers` (the author's followers) or `nobody` (only the author). A new post takes its author's
default unless another is given; a followers-only post is always `nobody`. A quote carries the words
of the original and of the hop it forwards, so both authors' policies must allow it. Plain reposts
(Weibo's 转发 without a word) are not quotes and are not governed by the policy.

The quoted author may revoke a quote afterwards: the quote stays where it is, with its own words, but
no longer shows the post it quoted and is no longer counted among its quotes.
"""

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from weituan.accounts.models import QuotePolicy
from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.microblog.models import Post, PostKind, Visibility
from weituan.microblog.queries.relations import is_following


def quote_policy_check(policy: str) -> str:
    """The policy, or a clear refusal naming the three there are."""
    if policy not in QuotePolicy.values:
        raise ValidationFailed(
            "quote_approval_policy must be one of public, followers, nobody", code="invalid_quote_policy"
        )
    return policy


def quote_policy_for(visibility: str, policy: str) -> str:
    """The policy a post of this visibility keeps: followers-only posts are never quotable by others."""
    return QuotePolicy.NOBODY if visibility == Visibility.PRIVATE else policy


def quote_allowed(post: Post, quoter_id: int) -> bool:
    """May `quoter_id` quote `post` under its policy? (Blocks are refused before this is asked.)"""
    if post.author_id == quoter_id:
        return True
    policy = quote_policy_for(post.visibility, post.quote_policy)
    if policy == QuotePolicy.PUBLIC:
        return True
    if policy == QuotePolicy.FOLLOWERS:
        return is_following(quoter_id, post.author_id)
    return False


def quote_check(*, parent: Post, root: Post | None, quoter_id: int) -> None:
    """Refuse a quote of `parent` (whose tree starts at `root`) that a policy does not allow.

    Blocks were checked when the parent was read (`target_for_write`, for its author and the root's),
    so a post cannot be quoted through someone else's repost by a person its author blocked.
    """
    for post in (root, parent):
        if post is not None and not quote_allowed(post, quoter_id):
            raise PermissionDenied(
                f"@{post.author.username} does not allow you to quote this post", code="quote_not_allowed"
            )


def quote_policy_set(*, actor: Any, post_id: int, policy: str) -> Post:
    """Change who may quote one of the actor's posts (past quotes stay; see `quote_revoke`)."""
    quote_policy_check(policy)
    post = Post.objects.filter(id=post_id, deleted_at__isnull=True).first()
    if post is None or (post.author_id != actor.pk and post.visibility == Visibility.PRIVATE):
        raise NotFound("Record not found")
    if post.author_id != actor.pk:
        raise PermissionDenied("Only the author can change who may quote a post", code="not_author")
    if post.kind == PostKind.COMMENT:
        raise ValidationFailed("A comment cannot be quoted", code="cannot_quote_comment")
    post.quote_policy = quote_policy_for(post.visibility, policy)
    Post.objects.filter(id=post.id).update(quote_policy=post.quote_policy)
    return post


def quote_revoke(*, actor: Any, post_id: int, quoting_id: int) -> Post:
    """The author of `post_id` takes back the quote `quoting_id` made of it; returns the quote.

    A quote shows the original of its tree (its `quoted_status`), so only the original's author may
    take it back, and only a quote they can see. Idempotent: revoking a revoked quote changes nothing.
    Counters move as a deleted quote's would.
    """
    with transaction.atomic():
        quoted = Post.objects.filter(id=post_id).first()
        if quoted is None or quoted.author_id != actor.pk:
            raise NotFound("Record not found")
        quote = (
            Post.objects.select_for_update()
            .filter(id=quoting_id, kind=PostKind.REPOST, deleted_at__isnull=True)
            .exclude(comment="")
            .first()
        )
        # A followers-only quote stays unknown to a quoted author who does not follow its author (a
        # block, either way, does not stop the quoted author from taking a quote back).
        hidden = (
            quote is not None
            and quote.visibility == Visibility.PRIVATE
            and not is_following(actor.pk, quote.author_id)
        )
        if quote is None or quote.root_id != post_id or hidden:
            raise NotFound("That post does not quote this one", code="not_a_quote")
        if quote.quote_revoked_at is None:
            quote.quote_revoked_at = timezone.now()
            Post.objects.filter(id=quote.id).update(quote_revoked_at=quote.quote_revoked_at)
            for counted_id in sorted({pk for pk in (quote.root_id, quote.parent_id) if pk is not None}):
                Post.objects.filter(id=counted_id, quotes_count__gt=0).update(
                    quotes_count=F("quotes_count") - 1
                )
    return quote
