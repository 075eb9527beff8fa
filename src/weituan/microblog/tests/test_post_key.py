"""A post's id is the key its row is stored under: SQLite's rowid (microblog 0023), PostgreSQL's bigint."""

from typing import Any

import pytest
from django.db import connection

from weituan.core.ids import next_id
from weituan.microblog.models import Post
from weituan.microblog.services.posts import post_create, repost_create

pytestmark = pytest.mark.django_db


def test_a_post_is_found_by_its_id_in_one_descent(merchant: Any, shopper: Any) -> None:
    post = post_create(author=merchant, text="今日团购")
    repost = repost_create(reposter=shopper, post_id=post.id, comment="冲")
    assert post.id < repost.id < next_id()
    assert Post.objects.get(id=repost.id).root_id == post.id
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            # The id is the rowid itself, not a separate index on it (which a rebuild by Django from a
            # plain `bigint` key would bring back).
            cursor.execute(
                f"EXPLAIN QUERY PLAN SELECT text FROM {Post._meta.db_table} WHERE id = %s", [post.id]
            )
            plans = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "USING INTEGER PRIMARY KEY (rowid=?)" in plans, plans
            cursor.execute(f"SELECT rowid FROM {Post._meta.db_table} WHERE id = %s", [repost.id])
            assert cursor.fetchone()[0] == repost.id
        else:
            cursor.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND column_name = 'id'",
                [Post._meta.db_table],
            )
            assert cursor.fetchone()[0] == "bigint"
