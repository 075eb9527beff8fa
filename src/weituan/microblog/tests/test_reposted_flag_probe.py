"""Whether the reader reposted each status they are shown is one probe of (reader, post) in the posts'
index, however many reposts a viral post has: the probe through the post's reposts read all of them."""

import re
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from weituan.core.ids import next_id
from weituan.core.testing import make_user
from weituan.microblog.models import Post, PostKind
from weituan.microblog.queries.versions import _versions_sql, post_versions
from weituan.microblog.services.posts import post_create, repost_create

pytestmark = pytest.mark.django_db

FANS = 60


def _plan(sql: str, params: list[Any]) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return " | ".join(str(row[-1]) for row in cursor.fetchall())
        # A test's few rows would be read whole: ask for the plan an index gives, as a large table's.
        cursor.execute("ANALYZE microblog_post")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return " | ".join(row[0] for row in cursor.fetchall())


def test_a_readers_repost_of_a_viral_post_is_found_by_one_probe(merchant: Any, shopper: Any) -> None:
    original = post_create(author=merchant, text="爆款开抢 #双十一#")
    now = timezone.now()
    fans = [make_user(f"fan{index}") for index in range(FANS)]
    Post.objects.bulk_create(
        [
            Post(
                id=next_id(),
                author=fan,
                kind=PostKind.REPOST,
                parent=original,
                root=original,
                depth=1,
                text="",
                comment="",
                created_at=now,
            )
            for fan in fans
        ]
    )
    mine = repost_create(reposter=shopper, post_id=original.id)
    found = post_versions([original.id, mine.id], shopper.id)
    assert found.reposted == {original.id}
    # The flag as the home timeline reads it, in the statement of the page's versions.
    wanted = [original.id, mine.id]
    ids: list[Any] = ["{" + ",".join(map(str, wanted)) + "}"] if connection.vendor == "postgresql" else wanted
    sql = _versions_sql(connection.vendor, 0 if connection.vendor == "postgresql" else len(wanted))
    kept = [min(wanted), shopper.id, min(wanted), shopper.id]
    reposted = [min(wanted), shopper.id, min(wanted), PostKind.REPOST.value, shopper.id]
    params = [*ids, *kept, *reposted, *kept, shopper.id, shopper.id]
    plan = _plan(sql, params)
    # The probe itself (alias v), by (author, parent); the page's gate reads the same index by a range.
    if connection.vendor == "sqlite":
        assert "SEARCH v USING INDEX post_author_parent (author_id=? AND parent_id=?)" in plan, plan
    else:
        assert re.search(r"Index (Only )?Scan using post_author_parent on microblog_post v\b", plan), plan
