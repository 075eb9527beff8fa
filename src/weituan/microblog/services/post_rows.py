"""The statements of publishing a post, written out: the post row, its topics and the author's counters.

Posting is the micro-blog's hottest write, and compiling the querysets of a post cost more than running
them. These write the same rows the ORM would (values prepared by the fields themselves, so SQLite's
datetimes and the JSON column are stored exactly as `Model.save` stores them), and return what the
response shows, so nothing is read back. Only the models' own quoted table and column names go into
the SQL; every value is a parameter (hence the S608 waivers).
"""

from datetime import datetime
from typing import Any

from django.db import connection, models
from django.utils import timezone

from weituan.core.rows import fetch_rows
from weituan.microblog.models import AccountStats, Post, PostTopic, Topic, TopicCount
from weituan.microblog.queries.rows import ModelColumns, convert_value, placeholders, table
from weituan.microblog.stats import TOPIC_SHARD_SQL, AccountCounts

_POST_FIELDS = list(Post._meta.concrete_fields)
_TOPIC_FIELDS = list(Topic._meta.concrete_fields)
_STATEMENTS: dict[tuple[str, str], str] = {}
_TOPIC_COLUMNS: dict[str, ModelColumns] = {}
# Per database vendor, for each of the post's fields: its attribute, the field, the Python type whose
# values (and None) the field stores as they are, or only wrapped in the driver's type for its column
# (PostgreSQL's integers), and that wrapper; the type is None when every value is prepared.
_POST_PREPARES: dict[str, list[tuple[str, models.Field[Any, Any], type | None, Any]]] = {}


def _run(sql: str, params: list[Any], *, fetch: bool = False) -> Any:
    """Run one of these statements (logged and counted as any other, see `fetch_rows`); returns its
    first row if `fetch`."""
    rows = fetch_rows(sql, params)
    return (rows[0] if rows else None) if fetch else None


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


def _stored_as_is(field: models.Field[Any, Any]) -> tuple[type | None, Any]:
    """The Python type whose values `field` stores unchanged on this database (preparing one gives it
    back as it is, or wrapped in the driver's type for the column), and that wrapper; (None, None) when
    its values must be prepared. Integers and text everywhere; aware datetimes on PostgreSQL."""
    if isinstance(field, models.ForeignKey):
        field = field.target_field
    if isinstance(field, models.IntegerField) and not isinstance(field, models.AutoField):
        wrappers = getattr(connection.ops, "integerfield_type_map", {})
        return int, wrappers.get(field.get_internal_type())
    if type(field) in (models.CharField, models.TextField):
        return str, None
    if type(field) is models.DateTimeField and connection.vendor == "postgresql":
        return datetime, None
    return None, None


def post_values(post: Post) -> list[Any]:
    """The post's column values as `Model.save` would send them (each field's `get_db_prep_save`),
    without preparing the values that would come back unchanged: a post's write is the hottest."""
    plan = _POST_PREPARES.get(connection.vendor)
    if plan is None:
        plan = _POST_PREPARES[connection.vendor] = [
            (field.attname, field, *_stored_as_is(field)) for field in _POST_FIELDS
        ]
    values: list[Any] = []
    state = post.__dict__
    for attname, field, kind, wrap in plan:
        value = state[attname] if attname in state else getattr(post, attname)
        if value is None and kind is not None:
            pass
        elif kind is int and type(value) is int:
            if wrap is not None:
                value = wrap(value)
        elif not (
            (kind is str and isinstance(value, str))
            or (kind is datetime and type(value) is datetime and value.tzinfo is not None)
        ):
            value = field.get_db_prep_save(value, connection)
        values.append(value)
    return values


def post_insert(post: Post) -> None:
    """INSERT `post` (every column given; `created_at` set here as auto_now_add would) in one statement.

    The instance is then what `Post.objects.create` returns: saved, with its values as given.
    """
    if post.created_at is None:
        post.created_at = timezone.now()
    values = post_values(post)
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


def _share_add_sql(source: str, ready: str = "TRUE") -> str:
    """The INSERT counting one use, at the moment given as its parameter, of the topic in `source` (a
    CTE of topic rows) in this connection's share of its counter, once `ready` holds."""
    counts = table(TopicCount)
    return (
        f"INSERT INTO {counts} (topic_id, shard, posts_count, last_used_at)"  # noqa: S608
        f" SELECT {source}.id, {TOPIC_SHARD_SQL}, 1, %s FROM {source} WHERE {ready}"
        " ON CONFLICT (topic_id, shard) DO UPDATE SET posts_count = "
        f"{counts}.posts_count + 1, last_used_at = GREATEST({counts}.last_used_at, EXCLUDED.last_used_at)"
    )


def _topic_use_linked_sql() -> str:
    columns = ", ".join(_quote(str(field.column)) for field in _TOPIC_FIELDS)
    return (
        f"WITH t AS (SELECT {columns} FROM {table(Topic)} WHERE {_quote('name')} = %s),"  # noqa: S608
        f" l AS (INSERT INTO {table(PostTopic)} (post_id, topic_id, author_id, created_at)"
        f" SELECT %s, t.id, %s, %s FROM t),"
        f" c AS ({_share_add_sql('t')})"
        f" SELECT {columns} FROM t"
    )


def topic_use_linked(post: Post, key: str, moment: datetime) -> Topic | None:
    """Count one use of the topic named `key` and link `post` to it; returns the topic's row, or None
    (and nothing written) when no such topic exists yet.

    On PostgreSQL it is one statement (the link's INSERT and the count in this connection's share of
    the topic's counter, so posts of a popular topic do not queue on one row); elsewhere two, the count
    on the topic's row (best made the transaction's last statement: the row stays locked until the
    commit).
    """
    if connection.vendor != "postgresql":
        topic = topic_use(key, moment)
        if topic is not None:
            post_topics_insert(post, [topic], moment)
        return topic
    row = _run(
        _statement("topic_use_linked", _topic_use_linked_sql),
        [key, post.id, post.author_id, moment, moment],
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
        f"UPDATE {table(AccountStats)} SET posts_count = posts_count + 1, last_post_at = %s,"  # noqa: S608
        f" newest_post_id = {_GREATEST[connection.vendor]}(COALESCE(newest_post_id, 0), %s)"
        " WHERE user_id = %s RETURNING followers_count, following_count, posts_count, last_post_at"
    )


# The larger of two values: GREATEST on PostgreSQL, the two-argument (scalar) MAX on SQLite.
_GREATEST = {"postgresql": "GREATEST", "sqlite": "MAX"}


def author_posts_bump(user_id: int, moment: datetime, post_id: int) -> AccountCounts | None:
    """Count one more post (`post_id`) for `user_id` and return their counters as they now stand; None
    when the account has no counters row yet (the caller creates it). One statement."""
    row = _run(
        _statement("stats_bump", _stats_bump_sql),
        [connection.ops.adapt_datetimefield_value(moment), post_id, user_id],
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


def _stats_upsert_sql() -> str:
    stats = table(AccountStats)
    return (
        f"INSERT INTO {stats} (user_id, followers_count, following_count, posts_count, last_post_at,"  # noqa: S608
        " newest_post_id) VALUES (%s, 0, 0, 1, %s, %s) ON CONFLICT (user_id) DO UPDATE SET"
        f" posts_count = {stats}.posts_count + 1, last_post_at = EXCLUDED.last_post_at, newest_post_id ="
        f" GREATEST(COALESCE({stats}.newest_post_id, 0), EXCLUDED.newest_post_id)"
        " RETURNING followers_count, following_count, posts_count, last_post_at"
    )


def _topic_parts_sql(index: int, after: list[str]) -> str:
    """The CTEs that find a topic (made when new), link the post to it and count the use in this
    connection's share of its counter. The share is counted only once `after` (what comes before it)
    has run, so every post locks rows in one order: the author's counters, then its topics' shares by
    name. A new topic's row counts nothing itself (its uses are all in its shares)."""
    topics, links = table(Topic), table(PostTopic)
    columns = ", ".join(_quote(str(field.column)) for field in _TOPIC_FIELDS)
    made = ", ".join(
        _quote(name) for name in ("name", "display", "posts_count", "created_at", "last_used_at")
    )
    ready = " AND ".join(f"EXISTS (SELECT FROM {name})" for name in after)
    return (
        f" f{index} AS (SELECT {columns} FROM {topics} WHERE {_quote('name')} = %s),"  # noqa: S608
        # Only when none was found: a topic made meanwhile by another post is taken as it is (the
        # no-op update is what makes the conflicting row come back).
        f" i{index} AS (INSERT INTO {topics} ({made}) SELECT %s, %s, 0, %s, NULL"
        f" WHERE NOT EXISTS (SELECT FROM f{index}) ON CONFLICT ({_quote('name')}) DO UPDATE SET"
        f" display = {topics}.display RETURNING {columns}),"
        f" t{index} AS (SELECT * FROM f{index} UNION ALL SELECT * FROM i{index}),"
        f" l{index} AS (INSERT INTO {links} (post_id, topic_id, author_id, created_at)"
        f" SELECT %s, t{index}.id, %s, %s FROM t{index}),"
        f" c{index} AS ({_share_add_sql(f't{index}', ready)} RETURNING 1)"
    )


def _post_publish_sql(task_sql: str, index_sql: str, topic_count: int, links_sql: str) -> str:
    parts = [
        f"p AS ({_post_insert_sql()} RETURNING 1)",
        f"q AS ({task_sql} RETURNING 1)",
        f"d AS ({index_sql} RETURNING 1)",
        f"s AS ({_stats_upsert_sql()})",
    ]
    if links_sql:
        parts.append(f"o AS ({links_sql} RETURNING 1)")
    # The first topic's row waits for every other row of the post (a statement's parts run in no set
    # order otherwise): a popular topic's row is locked by each post until its commit.
    after = ["p", "q", "d", "s"]
    for index in range(topic_count):
        parts.append(_topic_parts_sql(index, after))
        after = [f"c{index}"]
    sources = ["s", *(f"t{index}" for index in range(topic_count))]
    if links_sql:
        sources.append("(SELECT count(*) AS made FROM o) AS links")  # the last column: links inserted
    return "WITH " + ", ".join(parts) + f" SELECT * FROM {', '.join(sources)}"  # noqa: S608


def post_publish_statement(
    post: Post,
    *,
    task: tuple[str, list[Any]],
    index: tuple[str, list[Any]],
    topics: list[tuple[str, str]],
    links: tuple[str, list[Any]] | None = None,
) -> tuple[AccountCounts, list[Topic], int]:
    """Publish an original post in one statement (PostgreSQL): the post row, its fan-out task's row
    (`task`: the INSERT and its parameters), its search row (`index`, likewise), the author's counters
    (the row made on a first post), the short links of its URLs (`links`: their INSERT, which skips a
    row it cannot write, and its parameters) and, for each of `topics` ((key, display) in key order),
    the post's link to the topic (made when new) and the use counted in this connection's share of its
    counter. Returns the author's counters as the post left them, the topics' rows and how many short
    links were inserted.

    One statement is one round trip and, outside a transaction, its own transaction: the post and its
    task commit together, or neither does. The rows are locked in the order every post write takes
    them: the author's counters, then the topics' counter shares by topic name.
    """
    if post.created_at is None:
        post.created_at = timezone.now()
    moment = post.created_at
    task_sql, task_params = task
    index_sql, index_params = index
    links_sql, links_params = links if links is not None else ("", [])
    key = f"post_publish:{len(topics)}:{task_sql}:{index_sql}:{links_sql}"
    sql = _statement(key, lambda: _post_publish_sql(task_sql, index_sql, len(topics), links_sql))
    params = post_values(post)
    params += task_params
    params += index_params
    params += [post.author_id, moment, post.id]
    params += links_params
    for name, display in topics:
        params += [name, name, display, moment, post.id, post.author_id, moment, moment]
    rows = fetch_rows(sql, params)
    if len(rows) != 1:
        raise RuntimeError(f"publishing post {post.id} returned {len(rows)} rows")
    row = rows[0]
    post._state.adding = False
    post._state.db = connection.alias
    followers, following, posts, last_post_at = row[:4]
    counts = AccountCounts(
        followers=followers,
        following=following,
        posts=posts,
        last_post_at=convert_value(AccountStats._meta.get_field("last_post_at"), last_post_at),
    )
    columns = _TOPIC_COLUMNS.get(connection.vendor)
    if columns is None:
        columns = _TOPIC_COLUMNS[connection.vendor] = ModelColumns(Topic, "t")
    built = [columns.build(row, 4 + index * columns.width) for index in range(len(topics))]
    return counts, built, int(row[-1]) if links_sql else 0
