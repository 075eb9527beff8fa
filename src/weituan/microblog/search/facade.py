"""What the rest of the micro-blog calls to keep the search index current.

Indexing runs inside the caller's transaction, so it commits or rolls back with the post itself: a post
is findable the moment it is visible and a deleted post is gone the moment the delete commits. One
exception: on SQLite a new original post is indexed by its fan-out, a fraction of a second later
(`post_index_deferred`). FTS5 writes a new segment of its index with every transaction that adds to it,
several pages for a single post inside the one write lock every post waits on; the fan-out indexes the
posts it delivers together, one segment for all of them.
"""

from typing import Any

from weituan.microblog.models import Post
from weituan.microblog.search import services, store


def post_index(*, post_id: int) -> None:
    """Index (or re-index) a post's text, in the current transaction."""
    services.post_index_refresh(post_id=post_id)


def post_index_new(*, post: Post) -> None:
    """Index a post just written in the current transaction, from the instance in hand (no read back)."""
    store.document_add(post_id=post.id, text=services.searchable_text(post))


def post_index_deferred() -> bool:
    """Whether a new original post is left to its fan-out to index (`posts_index_fanned_out`) rather
    than indexed in its own transaction: on SQLite, when the fan-out is a task the database task
    backend commits with the post, so a worker runs it apart from the writer. (A fan-out run inline
    by another backend, after the post's commit, would only add a transaction of its own.)"""
    if store.is_postgres():
        return False
    from django.db import connection

    from weituan.microblog.timelines.tasks import fanout_runs_in_worker

    return fanout_runs_in_worker(using=connection.alias)


def posts_index_fanned_out(post_ids: list[int]) -> None:
    """Index the new original posts among `post_ids` that their own write left to their fan-out (see
    `post_index_deferred`); the others, and posts deleted meanwhile, are left alone."""
    if post_index_deferred():
        store.documents_add_new_originals(post_ids)


def post_index_new_statement(*, post: Post) -> tuple[str, list[Any]] | None:
    """The statement that indexes a post just made (PostgreSQL), for a caller writing it as part of a
    larger one; None when there is nothing to index or the index is not PostgreSQL's."""
    text = services.searchable_text(post)
    if not store.is_postgres() or not text.strip():
        return None
    return store.POSTGRES_UPSERT, store.document_upsert_params(post_id=post.id, text=text)


def post_unindex(*, post_id: int) -> None:
    """Drop a deleted post from the index, in the current transaction."""
    services.post_index_remove(post_id=post_id)
