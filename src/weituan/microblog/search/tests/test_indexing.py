"""The index follows posts written through the micro-blog's own services, and can be rebuilt."""

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from weituan.microblog.models import Post, PostKind
from weituan.microblog.search import store
from weituan.microblog.search.queries import posts_search
from weituan.microblog.services.edits import post_edit
from weituan.microblog.services.posts import post_create, post_delete, repost_create
from weituan.microblog.timelines.fanout import fanout_deliver, fanout_deliver_many

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


# --- a new original post indexed by its fan-out (SQLite) -----------------------------------------


def _post_in_queue(author: Any, text: str, settings: Any) -> Post:
    """A post written as the server writes it with the database task backend: its fan-out task committed
    with it, the worker not yet run."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    return post_create(author=author, text=text)


def test_a_new_post_is_indexed_with_its_write_on_postgresql_and_by_its_fan_out_on_sqlite(
    shopper: Any, merchant: Any, settings: Any
) -> None:
    post = _post_in_queue(merchant, "今天的团购很划算", settings)
    waiting = posts_search(query="划算", viewer=shopper)
    if connection.vendor == "postgresql":
        assert waiting == [post.id]
    else:
        assert waiting == []  # the worker has not delivered it yet
    fanout_deliver(post_id=post.id)
    assert posts_search(query="划算", viewer=shopper) == [post.id]
    fanout_deliver(post_id=post.id)  # delivered again (a retried task): indexed once, no error
    assert index_size() == 1


def test_posts_fanned_out_together_are_indexed_together(shopper: Any, merchant: Any, settings: Any) -> None:
    posts = [_post_in_queue(merchant, f"第{n}个拼团 划算", settings) for n in range(3)]
    with CaptureQueriesContext(connection) as captured:
        fanout_deliver_many(post_ids=[post.id for post in posts])
    assert sorted(posts_search(query="划算", viewer=shopper)) == sorted(post.id for post in posts)
    if connection.vendor == "sqlite":
        inserts = [q["sql"] for q in captured.captured_queries if f"INSERT INTO {store.TABLE}" in q["sql"]]
        assert len(inserts) == 1  # one statement (executemany) in one transaction for all three


def test_a_post_deleted_or_edited_before_its_fan_out_is_indexed_as_that_left_it(
    shopper: Any, merchant: Any, settings: Any
) -> None:
    deleted = _post_in_queue(merchant, "删掉的划算团", settings)
    edited = _post_in_queue(merchant, "原来的文字", settings)
    post_delete(actor=merchant, post_id=deleted.id)
    post_edit(editor=merchant, post_id=edited.id, text="改过的划算文字")
    fanout_deliver_many(post_ids=[deleted.id, edited.id])
    assert posts_search(query="划算", viewer=shopper) == [edited.id]
    assert posts_search(query="原来", viewer=shopper) == []
    assert index_size() == 1
