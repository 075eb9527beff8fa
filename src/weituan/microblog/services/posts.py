"""Writing posts and reposts (Weibo forwards), deleting them, and replaying retried writes.

A repost is a hop in its root's repost tree: `parent` is the post forwarded, `root` the original,
`depth` the hop count. Its `text` carries Weibo's chain, `comment//@parent: their comment//@...`, built
from the structured `chain` (see `Post.chain`); `comment` keeps only what this reposter wrote.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from weituan.accounts.queries import users_by_usernames
from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.core.ids import next_id
from weituan.core.models import IdempotencyRecord
from weituan.core.stream_events import stream_publish
from weituan.microblog.models import NotificationKind, Post, PostKind, Topic, Visibility
from weituan.microblog.queries.post_links import outbound_urls
from weituan.microblog.search.facade import (
    post_index_deferred,
    post_index_new,
    post_index_new_statement,
    post_unindex,
)
from weituan.microblog.services.events import post_event_record
from weituan.microblog.services.notifications import notification_create, notifications_for_post_delete
from weituan.microblog.services.post_content import (
    length_check,
    media_attach,
    mentions_record,
    target_for_write,
    topic_get_or_create,
    topics_record,
    topics_release,
    visibility_check,
)
from weituan.microblog.services.post_links import post_links_make, post_links_statement, post_links_written
from weituan.microblog.services.post_rows import (
    author_posts_bump,
    post_insert,
    post_publish_statement,
    topic_use_linked,
)
from weituan.microblog.services.quotes import quote_check, quote_policy_check, quote_policy_for
from weituan.microblog.stats import AccountCounts, account_counts, account_stats_bump
from weituan.microblog.text import (
    chain_text,
    extract_mentions,
    extract_topics,
    topic_key,
    weighted_length,
)
from weituan.microblog.timelines.facade import post_distribute, post_distribute_row, post_withdraw
from weituan.tracking.facade import EventName


@dataclass(slots=True)
class PublishedPost:
    """An original post just written, with everything its Status shows, so nothing is read back: the
    author's counters as the post left them, the accounts it mentions and its topics, in the order a
    later read gives them. `with_media` says images were attached (those are not carried here)."""

    post: Post
    author_counts: AccountCounts
    mentioned: list[Any] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    with_media: bool = False


def post_create(
    *,
    author: Any,
    text: str,
    media_ids: Sequence[int] = (),
    visibility: str = Visibility.PUBLIC,
    deal_id: int | None = None,
    language: str = "",
    quote_policy: str | None = None,
) -> Post:
    """Publish an original post: text checked for length, images attached, mentions and topics recorded.

    A post with images may have no text; a post with neither is refused ("empty_post"). `quote_policy`
    (None: the author's default) says who may quote it (see services.quotes).
    """
    return post_publish(
        author=author,
        text=text,
        media_ids=media_ids,
        visibility=visibility,
        deal_id=deal_id,
        language=language,
        quote_policy=quote_policy,
    ).post


def post_publish(
    *,
    author: Any,
    text: str,
    media_ids: Sequence[int] = (),
    visibility: str = Visibility.PUBLIC,
    deal_id: int | None = None,
    language: str = "",
    quote_policy: str | None = None,
) -> PublishedPost:
    """`post_create`, returning the post with what its Status shows (see PublishedPost): the post
    drafted (`post_draft`), then written (`post_draft_publish`)."""
    draft = post_draft(
        author=author,
        text=text,
        media_ids=media_ids,
        visibility=visibility,
        deal_id=deal_id,
        language=language,
        quote_policy=quote_policy,
    )
    return post_draft_publish(draft)


@dataclass(slots=True)
class PostDraft:
    """An original post checked and made ready to write, before any transaction: the row (without
    its id and time, which `post_draft_publish` gives it when it writes), the names it mentions, its
    topics (normalised key -> name as written, in key order) and the URLs its links are made for."""

    post: Post
    media_ids: tuple[int, ...]
    mentions: list[str]
    topics: list[tuple[str, str]]
    urls: list[str]


def post_draft(
    *,
    author: Any,
    text: str,
    media_ids: Sequence[int] = (),
    visibility: str = Visibility.PUBLIC,
    deal_id: int | None = None,
    language: str = "",
    quote_policy: str | None = None,
) -> PostDraft:
    """Check an original post and make its row, reading and writing nothing: what can be done before a
    writer waits its turn (on SQLite, the database's one write lock) is done here, so that the turn
    holds only the statements. Refuses what `post_publish` refuses for its text and options."""
    text = text.strip()
    length_check(text, allow_empty=bool(media_ids))
    visibility_check(visibility)
    post = Post(
        id=None,
        author=author,
        kind=PostKind.ORIGINAL,
        visibility=visibility,
        quote_policy=_quote_policy_of(author, visibility, quote_policy),
        text=text,
        deal_id=deal_id,
        language=language[:10],
        quotes_count=0,
    )
    names = {topic_key(name)[:100]: name[:100] for name in extract_topics(text)}
    return PostDraft(
        post=post,
        media_ids=tuple(media_ids),
        mentions=extract_mentions(text),
        topics=sorted(names.items()),
        urls=outbound_urls(text),
    )


def post_draft_publish(draft: PostDraft) -> PublishedPost:
    """Write the post `draft` made (once: the draft's row becomes the post), its id and time taken now,
    so that posts are numbered in the order they are written.

    One transaction: the post row, its images, mentions (and their notifications), the author's
    counters, the fan-out task (in the same transaction with the database task backend, else right
    after the commit), the search index (on SQLite left to the fan-out, see
    `search.facade.post_index_deferred`), the short links of its URLs (one insert; none without a URL)
    and last the topics (created on first use, counted). Without mentions or images that is a handful
    of statements, the SQL written out (`post_rows`); on PostgreSQL with the database task backend, one
    statement (`post_publish_statement`).
    """
    post, media_ids, mentions = draft.post, draft.media_ids, draft.mentions
    if post.id is not None:
        raise ValueError("This draft was published already")
    author = post.author
    now = timezone.now()
    post.id, post.created_at = next_id(), now
    plain = not media_ids and not mentions
    if connection.vendor == "postgresql" and plain:
        published = _publish_in_one_statement(draft)
        if published is not None:
            return published
    # A plain post refuses nothing once its rows are being written (only images and mentions can), so
    # inside a caller's transaction it needs no savepoint of its own: two statements fewer while
    # SQLite's write lock is held. A failure still rolls the caller's transaction back.
    with transaction.atomic(savepoint=not plain):
        post_insert(post)
        media_attach(post=post, owner_id=author.pk, media_ids=media_ids)
        mentioned = _mentions_record(post=post, actor_id=author.pk, names=mentions)
        counts = author_posts_bump(author.pk, now, post.id)
        if counts is None:  # the author's first post ever: the counters row is made here
            account_stats_bump(user_id=author.pk, posts=1, post_id=post.id)
            counts = account_counts([author.pk])[author.pk]
        post_distribute(post_id=post.id)
        if not post_index_deferred():  # else its fan-out indexes it
            post_index_new(post=post)
        post_links_make(post, urls=draft.urls)
        # Last: the row a topic's use is counted on stays locked until the commit (on SQLite the topic's
        # own row; on PostgreSQL this connection's share of its counter).
        topics = _topics_record(post=post, names=draft.topics, moment=now)
    return PublishedPost(
        post=post, author_counts=counts, mentioned=mentioned, topics=topics, with_media=bool(media_ids)
    )


def _quote_policy_of(author: Any, visibility: str, asked: str | None) -> str:
    policy = quote_policy_check(asked) if asked is not None else author.quote_policy
    return quote_policy_for(visibility, policy)


def _publish_in_one_statement(draft: PostDraft) -> PublishedPost | None:
    """`post_draft_publish` of a post without images or mentions as one statement
    (`post_publish_statement`), its fan-out task's row included; None (nothing written) when the task
    backend or the search index cannot be written in it."""
    post = draft.post
    index = post_index_new_statement(post=post)
    task = post_distribute_row(post_id=post.id, using=connection.alias) if index is not None else None
    if index is None or task is None:
        return None
    links = post_links_statement(post, urls=draft.urls)
    counts, topics, inserted = post_publish_statement(
        post,
        task=(task.sql, task.params),
        index=index,
        topics=draft.topics,
        links=(links.sql, links.params) if links is not None else None,
    )
    task.written()
    if links is not None:
        post_links_written(post, links, inserted=inserted)
    return PublishedPost(post=post, author_counts=counts, topics=topics)


def _mentions_record(*, post: Post, actor_id: int, names: list[str]) -> list[Any]:
    """`mentions_record` for an original post mentioning `names` (as `extract_mentions` finds them in
    its text), returning the mentioned accounts (in mention order)."""
    if not names:
        return []
    users = list(users_by_usernames(names).values())
    if users:
        mentions_record(post=post, actor_id=actor_id, text="", extra_user_ids=[user.pk for user in users])
    return users


def _topics_record(*, post: Post, names: list[tuple[str, str]], moment: datetime) -> list[Topic]:
    """`topics_record` for a post in hand and its topics (key, name as written) in key order: each
    counted and linked in that order (so concurrent posts lock counter rows in one order) by one
    statement that returns its row (two on SQLite), the topic created first when new."""
    topics: list[Topic] = []
    for key, name in names:
        topic = topic_use_linked(post, key, moment)
        if topic is None:
            topic_get_or_create(key, name)
            topic = topic_use_linked(post, key, moment)
            assert topic is not None
        topics.append(topic)
    return topics


def chain_fitted(comment: str, chain: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Drop the farthest hops until the text fits the length limit; the tree still holds every hop."""
    limit = settings.POST_MAX_WEIGHTED_LENGTH
    text = chain_text(comment, chain)
    while chain and weighted_length(text) > limit:
        chain = chain[:-1]
        text = chain_text(comment, chain)
    return chain, text


def repost_create(
    *,
    reposter: Any,
    post_id: int,
    comment: str = "",
    visibility: str = Visibility.PUBLIC,
    reuse_plain: bool = False,
    visitor_id: str = "",
    quote_policy: str | None = None,
) -> Post:
    """Forward a post, with an optional comment. A repost of a repost becomes a deeper hop of the same tree.

    Refused when the post is missing ("not_found"), deleted ("post_deleted", also when its root is),
    a comment ("cannot_repost_comment"), followers-only ("not_repostable"), or when the reposter and the
    parent's author, or the original's, blocked one another ("blocked", with or without a comment: a
    repost of a repost joins the original's tree and counts there). Counters: the root's
    `reposts_count` counts the whole tree; the parent's (when the parent is itself a repost) counts its
    direct reposts; `quotes_count` moves the same way for a repost with a comment. The parent's author
    is notified.

    With `reuse_plain`, an existing plain repost of the same post by the same user is returned instead
    of a second one (Mastodon's reblog is idempotent).

    The URLs in the repost's text (its comment and the chain it carries) get short links of its own, and
    a `repost` event on the post forwarded is recorded after the commit (with `visitor_id`, the
    browser's, when there is one); a reused repost records nothing.
    """
    comment = comment.strip()
    if comment:
        length_check(comment)
    visibility_check(visibility)
    own_policy = _quote_policy_of(reposter, visibility, quote_policy)
    with transaction.atomic():
        parent = target_for_write(reposter, post_id)
        if parent.kind == PostKind.COMMENT:
            raise ValidationFailed("A comment cannot be reposted", code="cannot_repost_comment")
        if parent.visibility == Visibility.PRIVATE and parent.author_id != reposter.pk:
            raise PermissionDenied("A followers-only post cannot be reposted", code="not_repostable")
        root: Post | None = None
        if comment:
            # Read with the parent (`target_for_write`); its author is read only to name them in a refusal.
            root = parent if parent.root is None else parent.root
            if root.deleted_at is not None:
                raise NotFound("The original post was deleted", code="post_deleted")
            quote_check(parent=parent, root=root, quoter_id=reposter.pk)
        if reuse_plain and not comment:
            existing = Post.objects.filter(
                author=reposter,
                kind=PostKind.REPOST,
                parent_id=parent.id,
                comment="",
                deleted_at__isnull=True,
            ).first()
            if existing is not None:
                return existing
        root_id = parent.root_id or parent.id
        if parent.kind == PostKind.REPOST:
            # The root must be live too: Weibo refuses to forward what no longer has an original (it was
            # read with the parent; the counters' conditional UPDATE below settles a delete meanwhile).
            if parent.root is None or parent.root.deleted_at is not None:
                raise NotFound("The original post was deleted", code="post_deleted")
            hop = {
                "post_id": parent.id,
                "user_id": parent.author_id,
                "username": parent.author.username,
                "comment": parent.comment,
            }
            chain, text = chain_fitted(comment, [hop, *parent.chain])
        else:
            chain, text = [], chain_text(comment, [])
        repost = Post.objects.create(
            author=reposter,
            kind=PostKind.REPOST,
            visibility=visibility,
            text=text,
            comment=comment,
            chain=chain,
            parent=parent,
            root_id=root_id,
            depth=parent.depth + 1,
            quote_policy=own_policy,
            # A forwarded deal post keeps its deal card, so every hop can bring (and be credited) orders.
            deal_id=parent.deal_id,
        )
        # A repost with a comment of its own is also a quote (Mastodon's term), counted alongside.
        bumps: dict[str, Any] = {"reposts_count": F("reposts_count") + 1}
        if comment:
            bumps["quotes_count"] = F("quotes_count") + 1
        # Lower ids first (the root is older than any hop), so concurrent reposts lock rows in one order.
        for counted_id in sorted({root_id, parent.id}):
            bumped = Post.objects.filter(id=counted_id, deleted_at__isnull=True).update(**bumps)
            if not bumped:
                raise NotFound("The post was deleted", code="post_deleted")
        notified = [parent.author_id]
        if comment and root is not None and root.author_id != parent.author_id:
            # A quote shows the original, so its author hears of it too (Mastodon's "quote"), however
            # deep in the tree it was made.
            notified.append(root.author_id)
        for recipient_id in notified:
            notification_create(
                recipient_id=recipient_id,
                actor_id=reposter.pk,
                kind=NotificationKind.REPOST,
                post_id=repost.id,
            )
        mentions_record(post=repost, actor_id=reposter.pk, text=comment, already_notified=tuple(notified))
        # The author's counters before the topics' rows, the order every post write locks them in.
        account_stats_bump(user_id=reposter.pk, posts=1, post_id=repost.id)
        topics_record(post=repost, text=comment)
        post_distribute(post_id=repost.id)
        post_index_new(post=repost)
        post_links_make(repost)
        post_event_record(
            event=EventName.REPOST,
            user_id=reposter.pk,
            post=parent,
            visitor_id=visitor_id,
            props={"repost_id": repost.id, "root_id": root_id, "depth": repost.depth},
        )
    return repost


def repost_undo(*, reposter: Any, post_id: int) -> int:
    """Delete the user's plain reposts of `post_id` (Mastodon's unreblog). Returns how many were removed."""
    plain_ids = list(
        Post.objects.filter(
            author=reposter, kind=PostKind.REPOST, parent_id=post_id, comment="", deleted_at__isnull=True
        ).values_list("id", flat=True)
    )
    for repost_id in plain_ids:
        post_delete(actor=reposter, post_id=repost_id)
    return len(plain_ids)


def post_delete(*, actor: Any, post_id: int) -> Post:
    """Delete a post, repost or comment (soft: `deleted_at`), by its author.

    The author of a post may also delete comments left on it. Counters are taken back exactly once: the
    conditional UPDATE that sets `deleted_at` decides which of two racing deletes does it.
    """
    post = Post.objects.filter(id=post_id).select_related("parent").first()
    if post is None:
        raise NotFound("Record not found")
    allowed = post.author_id == actor.pk or (
        post.kind == PostKind.COMMENT and post.parent is not None and post.parent.author_id == actor.pk
    )
    if not allowed:
        raise PermissionDenied("Only the author can delete this post", code="not_author")
    with transaction.atomic():
        now = timezone.now()
        if not Post.objects.filter(id=post.id, deleted_at__isnull=True).update(deleted_at=now):
            raise NotFound("The post was already deleted", code="post_deleted")
        post.deleted_at = now
        if post.kind == PostKind.REPOST:
            assert post.root_id is not None and post.parent_id is not None
            # A revoked quote was taken off the quote counts then (read now, under this delete's lock).
            counted_quote = bool(post.comment) and not (
                Post.objects.filter(id=post.id, quote_revoked_at__isnull=False).exists()
            )
            # The root's row changing is also what tells the renderings kept for its tree's reposts
            # that a hop of their chains is gone (see `queries.posts._chain_deleted_mark`).
            for counted_id in sorted({post.root_id, post.parent_id}):
                Post.objects.filter(id=counted_id, reposts_count__gt=0).update(
                    reposts_count=F("reposts_count") - 1
                )
                if counted_quote:
                    Post.objects.filter(id=counted_id, quotes_count__gt=0).update(
                        quotes_count=F("quotes_count") - 1
                    )
        elif post.kind == PostKind.COMMENT:
            counted = sorted(pk for pk in (post.parent_id, post.reply_to_id) if pk is not None)
            for counted_id in counted:
                Post.objects.filter(id=counted_id, comments_count__gt=0).update(
                    comments_count=F("comments_count") - 1
                )
        if post.kind != PostKind.COMMENT:
            account_stats_bump(user_id=post.author_id, posts=-1)
            post_withdraw(post_id=post.id, author_id=post.author_id)
            post_unindex(post_id=post.id)
        topics_release(post_id=post.id)
        notifications_for_post_delete(post_id=post.id)
        stream_publish({"t": "delete", "id": post.id, "a": post.author_id, "v": post.visibility})
    return post


def idempotent_write(
    *, scope: str, key: str, request_hash: str, write: Callable[[], int]
) -> tuple[int, bool]:
    """Run `write` (returning the id it made) once per (scope, key); a retry gets the first id back.

    Returns (id, replayed). The record is claimed in the same transaction as the write, so a write that
    fails leaves no record and may be retried; a concurrent retry waits on the claim and then replays.
    A retry with a different request under the same key is refused ("idempotency_mismatch").
    """
    key = key.strip()[:255]
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(scope=scope, key=key, request_hash=request_hash)
        except IntegrityError:
            existing = IdempotencyRecord.objects.get(scope=scope, key=key)
            if existing.request_hash != request_hash:
                raise ValidationFailed(
                    "This Idempotency-Key was used for a different request", code="idempotency_mismatch"
                ) from None
            if not isinstance(existing.response, dict) or "id" not in existing.response:
                raise ValidationFailed(
                    "The first request with this Idempotency-Key is still running", code="idempotency_busy"
                ) from None
            return int(existing.response["id"]), True
        made_id = write()
        record.response = {"id": made_id}
        record.status_code = 200
        record.save(update_fields=["response", "status_code"])
    return made_id, False
