"""The post index tables: an FTS5 table on SQLite, a tsvector table with a GIN index on PostgreSQL.

Both hold one row per searchable post, keyed by the post id, with the terms cut by `terms.py`.
The tables are created by this app's migrations, raw, because neither shape is a Django model.
SQL here is assembled only from module constants; every value goes in as a parameter.
"""

import json
from typing import Any

from django.db import connection

from weituan.core.rows import fetch_rows
from weituan.microblog.search.terms import document_text, document_tsvector

TABLE = "microblog_search_postdoc"

SQLITE_CREATE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "terms, tokenize = 'unicode61 remove_diacritics 0')"
)
POSTGRES_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (post_id bigint PRIMARY KEY, document tsvector NOT NULL);"
    f"CREATE INDEX IF NOT EXISTS {TABLE}_document ON {TABLE} USING gin (document)"
)
DROP = f"DROP TABLE IF EXISTS {TABLE}"
# Store (or replace) one post's terms; the parameters are `document_upsert_params`.
POSTGRES_UPSERT = (
    f"INSERT INTO {TABLE} (post_id, document) VALUES (%s, %s::tsvector) "  # noqa: S608
    "ON CONFLICT (post_id) DO UPDATE SET document = EXCLUDED.document"
)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def document_write(*, post_id: int, text: str) -> None:
    """Store (or replace) the terms of one post; an empty text removes the post instead."""
    if not text.strip():
        document_drop(post_id=post_id)
        return
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(POSTGRES_UPSERT, document_upsert_params(post_id=post_id, text=text))
        else:
            cursor.execute(f"DELETE FROM {TABLE} WHERE rowid = %s", [post_id])  # noqa: S608
            cursor.execute(
                f"INSERT INTO {TABLE} (rowid, terms) VALUES (%s, %s)",  # noqa: S608
                [post_id, document_text(text)],
            )


def document_add(*, post_id: int, text: str) -> None:
    """Store the terms of a post written in this transaction, which has no row yet: on SQLite one
    INSERT (no DELETE of a row that cannot be there, inside the write lock); nothing for an empty text."""
    if not text.strip():
        return
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(POSTGRES_UPSERT, document_upsert_params(post_id=post_id, text=text))
        else:
            cursor.execute(
                f"INSERT INTO {TABLE} (rowid, terms) VALUES (%s, %s)",  # noqa: S608
                [post_id, document_text(text)],
            )


def documents_add_new_originals(post_ids: list[int]) -> int:
    """SQLite: index those of `post_ids` that are original posts, not deleted and not in the index yet
    (their own write left them to their fan-out, see `facade.post_index_deferred`), all in one
    transaction, queued for the write lock (its log's checkpoint after it, as other queued writes): the
    FTS5 table then writes one segment for all of them rather than one per post. The posts are read
    and their terms cut before the lock is asked for (none found: no transaction at all), then read
    again inside it, so a post deleted or edited meanwhile (its own write indexes or unindexes it) is
    left as that write left it. Returns how many were indexed."""
    from django.db import transaction

    from weituan.core.sqlite_checkpoint import checkpoints_held
    from weituan.core.sqlite_writer import sqlite_writer

    wanted = _new_originals(post_ids)
    if not wanted:
        return 0
    terms = {post_id: document_text(text) for post_id, text in wanted.items()}
    with checkpoints_held(), sqlite_writer(), transaction.atomic(), connection.cursor() as cursor:
        rows = [
            (post_id, terms[post_id] if text == wanted[post_id] else document_text(text))
            for post_id, text in _new_originals(list(terms)).items()
        ]
        if rows:
            cursor.executemany(f"INSERT INTO {TABLE} (rowid, terms) VALUES (%s, %s)", rows)  # noqa: S608
    return len(rows)


def _new_originals(post_ids: list[int]) -> dict[int, str]:
    """The text of each of `post_ids` that is an original post with words, not deleted, and not in the
    index (SQLite): one statement, the same for any number of posts (the ids as one JSON list)."""
    from weituan.microblog.models import Post, PostKind

    if not post_ids:
        return {}
    posts = connection.ops.quote_name(Post._meta.db_table)
    rows = fetch_rows(
        f"SELECT p.id, p.text FROM {posts} p WHERE p.id IN (SELECT value FROM json_each(%s))"  # noqa: S608
        f" AND p.kind = %s AND p.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM {TABLE} d WHERE d.rowid = p.id)",
        [json.dumps(post_ids), PostKind.ORIGINAL.value],
    )
    return {post_id: text for post_id, text in rows if text.strip()}


def document_upsert_params(*, post_id: int, text: str) -> list[Any]:
    """The parameters of POSTGRES_UPSERT for a post with a non-empty `text`."""
    return [post_id, document_tsvector(text)]


def document_drop(*, post_id: int) -> None:
    with connection.cursor() as cursor:
        key = "post_id" if is_postgres() else "rowid"
        cursor.execute(f"DELETE FROM {TABLE} WHERE {key} = %s", [post_id])  # noqa: S608


def documents_replace_all(rows: list[tuple[int, str]]) -> None:
    """Write many posts' terms at once (for a rebuild); `rows` are (post id, searchable text)."""
    rows = [(post_id, text) for post_id, text in rows if text.strip()]
    if not rows:
        return
    with connection.cursor() as cursor:
        if is_postgres():
            # One statement per batch: two arrays unnested side by side.
            cursor.execute(
                f"INSERT INTO {TABLE} (post_id, document) "  # noqa: S608
                "SELECT * FROM unnest(%s::bigint[], %s::text[]::tsvector[]) "
                "ON CONFLICT (post_id) DO UPDATE SET document = EXCLUDED.document",
                [[post_id for post_id, _ in rows], [document_tsvector(text) for _, text in rows]],
            )
        else:
            cursor.executemany(
                f"DELETE FROM {TABLE} WHERE rowid = %s",  # noqa: S608
                [(post_id,) for post_id, _ in rows],
            )
            cursor.executemany(
                f"INSERT INTO {TABLE} (rowid, terms) VALUES (%s, %s)",  # noqa: S608
                [(post_id, document_text(text)) for post_id, text in rows],
            )


def documents_clear() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608
