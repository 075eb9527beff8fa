"""The index follows posts written through the micro-blog's own services, and can be rebuilt."""

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from weituan.microblog.models import Post, PostKind
from weituan.microblog.search import store
from weituan.microblog.search.queries import posts_search
from weituan.microblog.services.posts import post_create, post_delete, repost_create

pytestmark = pytest.mark.django_db


def index_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {store.TABLE}")
        (count,) = cursor.fetchone()
        return int(count)


def test_a_new_post_is_findable_at_once_and_gone_once_deleted(
    shopper: Any, merchant: Any, run_on_commit: Any
) -> None:
    with run_on_commit():
        post = post_create(author=merchant, text="今天的团购很划算 #团购#")
    assert posts_search(query="划算", viewer=shopper) == [post.id]

    with run_on_commit():
        repost = repost_create(reposter=shopper, post_id=post.id, comment="真的很划算")
    assert posts_search(query="划算", viewer=None) == [repost.id, post.id]

    with run_on_commit():
        post_delete(actor=merchant, post_id=post.id)
    assert posts_search(query="划算", viewer=shopper) == [repost.id]
    assert index_size() == 1


def test_a_rolled_back_post_leaves_nothing_in_the_index(merchant: Any) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        post_create(author=merchant, text="团购 rolled back")
        raise RuntimeError("abort")
    assert index_size() == 0
    assert posts_search(query="团购", viewer=None) == []


def test_reindex_rebuilds_from_live_posts(shopper: Any, merchant: Any) -> None:
    kept = Post.objects.create(author=merchant, text="团购 kept")
    Post.objects.create(author=merchant, text="团购 gone", deleted_at=kept.created_at)
    Post.objects.create(
        author=shopper, text="团购 comment", kind=PostKind.COMMENT, parent=kept, root=kept, depth=1
    )
    with connection.cursor() as cursor:  # a stale row that the rebuild must drop
        if connection.vendor == "postgresql":
            cursor.execute(f"INSERT INTO {store.TABLE} VALUES (1, 'stale'::tsvector)")
        else:
            cursor.execute(f"INSERT INTO {store.TABLE} (rowid, terms) VALUES (1, 'stale')")

    output = io.StringIO()
    call_command("search_reindex", "--batch-size", "1", stdout=output)

    assert output.getvalue() == "Indexed 1 posts.\n"
    assert index_size() == 1
    assert posts_search(query="团购", viewer=None) == [kept.id]
