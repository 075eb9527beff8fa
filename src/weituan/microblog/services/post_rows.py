"""The statements of publishing a post, written out: the post row, its topics and the author's counters.

Posting is the micro-blog's hottest write, and compiling the querysets of a post cost more than running
them. These write the same rows the ORM would (values prepared by the fields themselves, so SQLite's
datetimes and the JSON column are stored exactly as `Model.save` stores them), and return what the
response shows, so nothing is read back. Only the models' own quoted table and column names go into
the SQL; every value is a parameter (hence the S608 waivers).
"""

from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from weituan.microblog.models import AccountStats, Post, PostTopic, Topic
from weituan.microblog.queries.rows import ModelColumns, convert_value, placeholders, table
from weituan.microblog.stats import AccountCounts

_POST_FIELDS = list(Post._meta.concrete_fields)
_TOPIC_FIELDS = list(Topic._meta.concrete_fields)
_STATEMENTS: dict[tuple[str, str], str] = {}
_TOPIC_COLUMNS: dict[str, ModelColumns] = {}


def _run(sql: str, params: list[Any], *, fetch: bool = False) -> Any:
    """Run one of these statements (logged and counted as any other); returns its first row if `fetch`."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if fetch else None


def _statement(name: str, build: Any) -> str:
    key = (connection.vendor, name)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = build()
    return found


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _post_insert_sql() -> str:
    columns = ", ".join(_quote(str(field.column)) for field in _POST_FIELDS)
    return f"INSERT INTO {table(Post)} ({columns}) VALUES ({placeholders(len(_POST_FIELDS))})"  # noqa: S608


def post_insert(post: Post) -> None:
    """INSERT `post` (every column given; `created_at` set here as auto_now_add would) in one statement.

    The instance is then what `Post.objects.create` returns: saved, with its values as given.
    """
    if post.created_at is None:
        post.created_at = timezone.now()
    values = [field.get_db_prep_save(getattr(post, field.attname), connection) for field in _POST_FIELDS]
    _run(_statement("post_insert", _post_insert_sql), values)
    post._state.adding = False
    post._state.db = connection.alias


def _topic_bump_sql() -> str:
    columns = ", ".join(_quote(str(field.column)) for field in _TOPIC_FIELDS)
    return (
        f"UPDATE {table(Topic)} SET posts_count = posts_count + 1, last_used_at = %s"  # noqa: S608
        f" WHERE {_quote('name')} = %s RETURNING {columns}"
    )


def topic_use(key: str, moment: datetime) -> Topic | None:
    """Count one use of the topic named `key` (a normalised key) and return its row; None when no such
    topic exists yet. One statement: the counter's UPDATE returns the row."""
    row = _run(
        _statement("topic_bump", _topic_bump_sql),
        [connection.ops.adapt_datetimefield_value(moment), key],
        fetch=True,
    )
    if row is None:
        return None
    columns = _TOPIC_COLUMNS.get(connection.vendor)
    if columns is None:
        columns = _TOPIC_COLUMNS[connection.vendor] = ModelColumns(Topic, "t")
    return columns.build(row)


def post_topics_insert(post: Post, topics: list[Topic], moment: datetime) -> None:
    """Link `post` to `topics`, in the order given, in one statement."""
    if not topics:
        return
    stamp = connection.ops.adapt_datetimefield_value(moment)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(topics))
    params: list[Any] = []
    for topic in topics:
        params += [post.id, topic.id, post.author_id, stamp]
    _run(f"INSERT INTO {table(PostTopic)} (post_id, topic_id, author_id, created_at) VALUES {rows}", params)  # noqa: S608


def _topic_use_linked_sql() -> str:
    columns = ", ".join(_quote(str(field.column)) for field in _TOPIC_FIELDS)
    return (
        f"WITH t AS (UPDATE {table(Topic)} SET posts_count = posts_count + 1, last_used_at = %s"  # noqa: S608
        f" WHERE {_quote('name')} = %s RETURNING {columns}),"
        f" l AS (INSERT INTO {table(PostTopic)} (post_id, topic_id, author_id, created_at)"
        f" SELECT %s, t.id, %s, %s FROM t)"
        f" SELECT {columns} FROM t"
    )


def topic_use_linked(post: Post, key: str, moment: datetime) -> Topic | None:
    """Count one use of the topic named `key` and link `post` to it; returns the topic's row, or None
    (and nothing written) when no such topic exists yet.

    A popular topic's row is locked by every post using it until that post commits, so this is best
    made the transaction's last statement. On PostgreSQL it is one statement (the counter's UPDATE and
    the link's INSERT in one round trip); elsewhere two.
    """
    if connection.vendor != "postgresql":
        topic = topic_use(key, moment)
        if topic is not None:
            post_topics_insert(post, [topic], moment)
        return topic
    row = _run(
        _statement("topic_use_linked", _topic_use_linked_sql),
        [moment, key, post.id, post.author_id, moment],
        fetch=True,
    )
    if row is None:
        return None
    columns = _TOPIC_COLUMNS.get(connection.vendor)
    if columns is None:
        columns = _TOPIC_COLUMNS[connection.vendor] = ModelColumns(Topic, "t")
    return columns.build(row)


def _stats_bump_sql() -> str:
    return (
        f"UPDATE {table(AccountStats)} SET posts_count = posts_count + 1, last_post_at = %s"  # noqa: S608
        " WHERE user_id = %s RETURNING followers_count, following_count, posts_count, last_post_at"
    )


def author_posts_bump(user_id: int, moment: datetime) -> AccountCounts | None:
    """Count one more post for `user_id` and return their counters as they now stand; None when the
    account has no counters row yet (the caller creates it). One statement."""
    row = _run(
        _statement("stats_bump", _stats_bump_sql),
        [connection.ops.adapt_datetimefield_value(moment), user_id],
        fetch=True,
    )
    if row is None:
        return None
    followers, following, posts, last_post_at = row
    return AccountCounts(
        followers=followers,
        following=following,
        posts=posts,
        last_post_at=convert_value(AccountStats._meta.get_field("last_post_at"), last_post_at),
    )
