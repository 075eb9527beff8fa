"""Comments (one level of replies, as on Weibo) and likes, with their counters kept exact; bookmarks."""

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from weituan.core.errors import NotFound, ValidationFailed
from weituan.microblog.models import Bookmark, Like, NotificationKind, Post, PostKind
from weituan.microblog.services.events import post_event_record
from weituan.microblog.services.notifications import notification_create
from weituan.microblog.services.post_content import (
    length_check,
    media_attach,
    mentions_record,
    target_for_write,
)
from weituan.microblog.services.post_links import post_links_make
from weituan.microblog.services.posts import post_delete
from weituan.tracking.facade import EventName


def comment_create(
    *,
    author: Any,
    post_id: int,
    text: str,
    reply_to_comment_id: int | None = None,
    media_ids: Sequence[int] = (),
    visitor_id: str = "",
) -> Post:
    """Comment on a post, or reply to one of its comments.

    Replies stay one level deep: a reply to a reply is attached to the top comment, and the person
    replied to is mentioned (the text gets Weibo's `回复@name: ` unless it already names them). When
    `post_id` is itself a comment (Mastodon's in_reply_to_id), this is a reply to that comment.
    The post's author is notified (kind comment), and so is the top comment's author for a reply.
    Counters: the post's `comments_count` counts comments and replies, a top comment's its replies.
    The URLs in the comment get their short links, and a `comment` event on the post is recorded after
    the commit (with `visitor_id`, the browser's, when there is one).
    """
    text = text.strip()
    with transaction.atomic():
        target = target_for_write(author, post_id)
        if target.kind == PostKind.COMMENT:
            if reply_to_comment_id is None:
                reply_to_comment_id = target.id
            assert target.parent_id is not None
            post = target_for_write(author, target.parent_id)
        else:
            post = target
        top: Post | None = None
        replied_user_id: int | None = None
        if reply_to_comment_id is not None:
            replied = (
                target if target.id == reply_to_comment_id else target_for_write(author, reply_to_comment_id)
            )
            if replied.kind != PostKind.COMMENT or replied.parent_id != post.id:
                raise ValidationFailed("That comment does not belong to this post", code="invalid_reply")
            if replied.reply_to_id is not None:
                top = Post.objects.select_related("author").get(id=replied.reply_to_id)
                replied_user_id = replied.author_id
                if f"@{replied.author.username}" not in text:
                    text = f"回复@{replied.author.username}: {text}"
            else:
                top = replied
        length_check(text, allow_empty=bool(media_ids))
        comment = Post.objects.create(
            author=author,
            kind=PostKind.COMMENT,
            visibility=post.visibility,
            text=text,
            parent=post,
            root_id=post.root_id or post.id,
            depth=post.depth,
            reply_to=top,
        )
        media_attach(post=comment, owner_id=author.pk, media_ids=media_ids)
        post_links_make(comment)
        # The post is older than any of its comments: bump in id order so concurrent writers agree.
        for counted_id in [post.id] + ([top.id] if top is not None else []):
            bumped = Post.objects.filter(id=counted_id, deleted_at__isnull=True).update(
                comments_count=F("comments_count") + 1
            )
            if not bumped:
                raise NotFound("The post was deleted", code="post_deleted")
        notified = {post.author_id}
        notification_create(
            recipient_id=post.author_id, actor_id=author.pk, kind=NotificationKind.COMMENT, post_id=comment.id
        )
        if top is not None and top.author_id not in notified:
            notified.add(top.author_id)
            notification_create(
                recipient_id=top.author_id,
                actor_id=author.pk,
                kind=NotificationKind.COMMENT,
                post_id=comment.id,
            )
        mentions_record(
            post=comment,
            actor_id=author.pk,
            text=text,
            extra_user_ids=[replied_user_id] if replied_user_id is not None else [],
            already_notified=notified,
        )
        post_event_record(
            event=EventName.COMMENT,
            user_id=author.pk,
            post=post,
            visitor_id=visitor_id,
            props={"comment_id": comment.id},
        )
    return comment


def comment_delete(*, actor: Any, comment_id: int) -> Post:
    """Delete a comment: by its author, or by the author of the post it is on."""
    comment = Post.objects.filter(id=comment_id, kind=PostKind.COMMENT).first()
    if comment is None:
        raise NotFound("Record not found")
    return post_delete(actor=actor, post_id=comment.id)


def like_add(*, user: Any, post_id: int, visitor_id: str = "") -> bool:
    """Like a post; True when this is a new like, False when it was already liked (idempotent).

    The unique (user, post) row is the guard: a racing second like fails its insert and changes nothing,
    so `likes_count` moves by exactly one per like row, and a `like` event is recorded (after the
    commit, with `visitor_id` when a browser is at hand) once per like row.
    """
    with transaction.atomic():
        post = target_for_write(user, post_id)
        try:
            with transaction.atomic():
                Like.objects.create(user=user, post_id=post.id)
        except IntegrityError:
            return False
        Post.objects.filter(id=post.id).update(likes_count=F("likes_count") + 1)
        notification_create(
            recipient_id=post.author_id, actor_id=user.pk, kind=NotificationKind.LIKE, post_id=post.id
        )
        post_event_record(event=EventName.LIKE, user_id=user.pk, post=post, visitor_id=visitor_id)
    return True


def like_remove(*, user: Any, post_id: int) -> bool:
    """Take a like back; True when there was one. Works on deleted posts too, so nothing gets stuck."""
    with transaction.atomic():
        if not Post.objects.filter(id=post_id).exists():
            raise NotFound("Record not found")
        deleted, _ = Like.objects.filter(user=user, post_id=post_id).delete()
        if not deleted:
            return False
        Post.objects.filter(id=post_id, likes_count__gt=0).update(likes_count=F("likes_count") - 1)
    return True


def bookmark_add(*, user: Any, post_id: int) -> bool:
    """Keep a post to read again (收藏); True when it is newly kept, False when it already was.

    Only a post the user may see and act on is kept (as a like). Nobody is told and nothing is
    counted: a bookmark is the user's own. The unique (user, post) row makes a repeat a no-op."""
    with transaction.atomic():
        post = target_for_write(user, post_id)
        try:
            with transaction.atomic():
                Bookmark.objects.create(user=user, post_id=post.id)
        except IntegrityError:
            return False
    return True


def bookmark_remove(*, user: Any, post_id: int) -> bool:
    """Stop keeping a post; True when it was kept. Works on deleted and hidden posts too, so a bookmark
    of a post that went away can still be removed."""
    if not Post.objects.filter(id=post_id).exists():
        raise NotFound("Record not found")
    deleted, _ = Bookmark.objects.filter(user=user, post_id=post_id).delete()
    return bool(deleted)
