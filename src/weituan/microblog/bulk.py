"""Loading large follow graphs and post histories at once, for the simulator and benchmarks.

These bypass per-row services on purpose (no notifications, no fan-out) and finish by recomputing
the account counters, so the loaded world obeys the same invariants as one built post by post.
PostgreSQL uses COPY; other databases use batched executemany.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

from django.db import connection, transaction


def _chunks[T](rows: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _copy_or_insert(table: str, columns: list[str], rows: Iterable[tuple], batch: int = 50_000) -> int:
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608 - fixed table and column names
            for chunk in _chunks(rows, batch):
                cursor.executemany(sql, chunk)
                count += len(chunk)
    return count


def follows_bulk_load(*, pairs: Iterable[tuple[int, int]], created_at: datetime) -> int:
    """Insert (follower_id, followee_id) pairs; the caller guarantees no duplicates and no self-follows."""
    with transaction.atomic():
        return _copy_or_insert(
            "microblog_follow",
            ["follower_id", "followee_id", "created_at"],
            ((follower, followee, created_at) for follower, followee in pairs),
        )


def posts_bulk_load(*, posts: Iterable[tuple[int, int, str, datetime]]) -> int:
    """Insert original posts given as (id, author_id, text, created_at); ids from `weituan.core.ids.id_for`."""
    with transaction.atomic():
        return _copy_or_insert(
            "microblog_post",
            [
                "id",
                "author_id",
                "kind",
                "visibility",
                "text",
                "comment",
                "chain",
                "depth",
                "reposts_count",
                "comments_count",
                "likes_count",
                "created_at",
                "language",
            ],
            (
                (post_id, author_id, "original", "public", text, "", "[]", 0, 0, 0, 0, created, "")
                for post_id, author_id, text, created in posts
            ),
        )


def account_stats_rebuild() -> None:
    """Recompute every account's counters from the rows (followers, following, live original posts)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM microblog_accountstats")
        cursor.execute(
            """
            INSERT INTO microblog_accountstats
                (user_id, followers_count, following_count, posts_count, last_post_at, newest_post_id)
            SELECT u.id,
                   COALESCE(fr.n, 0), COALESCE(fg.n, 0), COALESCE(p.n, 0), p.last_at, p.newest
            FROM accounts_user u
            LEFT JOIN (SELECT followee_id AS uid, COUNT(*) AS n FROM microblog_follow GROUP BY followee_id) fr
                   ON fr.uid = u.id
            LEFT JOIN (SELECT follower_id AS uid, COUNT(*) AS n FROM microblog_follow GROUP BY follower_id) fg
                   ON fg.uid = u.id
            LEFT JOIN (SELECT author_id AS uid, COUNT(*) AS n, MAX(created_at) AS last_at, MAX(id) AS newest
                       FROM microblog_post WHERE deleted_at IS NULL AND kind <> 'comment' GROUP BY author_id) p
                   ON p.uid = u.id
            """
        )
