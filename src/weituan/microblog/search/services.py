"""Keeping the post index in step with posts."""

from django.db import transaction

from weituan.microblog.models import Post, PostKind
from weituan.microblog.search import store


def searchable_text(post: Post) -> str:
    """What a post is found by. A repost contributes only its own comment: the forwarded text and
    the `//@` chain belong to other posts, which are indexed themselves. Comments are read under their
    post, not searched on their own, as on Weibo."""
    if post.deleted_at is not None or post.kind == PostKind.COMMENT:
        return ""
    if post.kind == PostKind.REPOST:
        return post.comment
    return post.text


def post_index_refresh(*, post_id: int) -> None:
    """Write the index row of a post from its current text, or drop it if the post is gone."""
    post = Post.objects.filter(pk=post_id).only("id", "kind", "text", "comment", "deleted_at").first()
    if post is None:
        store.document_drop(post_id=post_id)
        return
    store.document_write(post_id=post.id, text=searchable_text(post))


def post_index_remove(*, post_id: int) -> None:
    store.document_drop(post_id=post_id)


def posts_reindex(*, batch_size: int = 2000) -> int:
    """Rebuild the whole index from the posts table (after a restore, or a change to how text is cut).

    Each batch commits on its own, so a long rebuild never holds the write lock for long; posts written
    meanwhile are indexed by their own transactions or their fan-out (see `facade.post_index_deferred`).
    Returns how many posts were indexed.
    """
    store.documents_clear()
    indexed = 0
    last_id = -1
    while True:
        batch = list(
            Post.objects.filter(id__gt=last_id, deleted_at__isnull=True)
            .exclude(kind=PostKind.COMMENT)
            .order_by("id")
            .only("id", "kind", "text", "comment", "deleted_at")[:batch_size]
        )
        if not batch:
            return indexed
        with transaction.atomic():
            store.documents_replace_all([(post.id, searchable_text(post)) for post in batch])
        indexed += sum(1 for post in batch if searchable_text(post).strip())
        last_id = batch[-1].id
