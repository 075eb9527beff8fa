"""Pinning: an author shows a few of their posts first on their profile (Weibo's 置顶, Mastodon's
pinned statuses)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from weituan.core.errors import NotFound, ValidationFailed
from weituan.microblog.models import Pin, Post, PostKind
from weituan.microblog.queries.visibility import visible_post_ids

# As many as Mastodon allows (its instance reports `max_pinned_statuses`).
PINS_MAX = 5


def pin_add(*, user: Any, post_id: int) -> bool:
    """Pin one of `user`'s own posts; True when newly pinned, False when it already was.

    An original or a repost with a comment of one's own can be pinned; a plain repost (it says nothing
    of its own) or a comment cannot, nor someone else's post, nor more than PINS_MAX posts. The count
    is taken under the user's row lock (SQLite's write lock), so two pins at once cannot pass it."""
    with transaction.atomic():
        post = Post.objects.filter(id=post_id, deleted_at__isnull=True).first()
        if post is None or (post.author_id != user.pk and not visible_post_ids(user, [post.id])):
            raise NotFound("Record not found")
        if post.author_id != user.pk:
            raise ValidationFailed("You can only pin your own posts", code="pin_not_own")
        if post.kind == PostKind.COMMENT:
            raise ValidationFailed("A comment cannot be pinned", code="pin_comment")
        if post.kind == PostKind.REPOST and not post.comment:
            raise ValidationFailed("A repost without a comment cannot be pinned", code="pin_reblog")
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        pins = Pin.objects.filter(user_id=user.pk)
        if pins.filter(post_id=post.id).exists():
            return False
        if pins.count() >= PINS_MAX:
            raise ValidationFailed(f"You can pin at most {PINS_MAX} posts: unpin one first", code="pin_limit")
        try:
            with transaction.atomic():
                Pin.objects.create(user_id=user.pk, post_id=post.id)
        except IntegrityError:
            return False
    return True


def pin_remove(*, user: Any, post_id: int) -> bool:
    """Unpin a post; True when it was pinned. Someone else's post, or one unknown, is a 404."""
    post = Post.objects.filter(id=post_id).only("id", "author_id").first()
    if post is None or post.author_id != user.pk:
        raise NotFound("Record not found")
    deleted, _ = Pin.objects.filter(user_id=user.pk, post_id=post_id).delete()
    return bool(deleted)
