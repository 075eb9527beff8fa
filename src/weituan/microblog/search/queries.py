"""Search reads: posts by full text, accounts by name, topics by name.

Every read takes the viewer (or None): accounts the viewer blocked, that blocked the viewer, or that
the viewer muted are left out, as they are from timelines.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Case, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.ids import id_at
from weituan.microblog.models import Block, Follow, Mute, Post, Topic, TopicCount, Visibility
from weituan.microblog.queries.relations import hidden_author_ids
from weituan.microblog.search import store
from weituan.microblog.search.terms import (
    contains_cjk,
    fts5_match,
    normalise,
    query_parts,
    tsquery_text,
)
from weituan.microblog.text import topic_key

MAX_LIMIT = 40
MAX_QUERY_LENGTH = 200
# How many of the newest matches are ranked by relevance (see posts_search).
CANDIDATES = 2000
# Relevance keeps at least half its weight however old a post is; a week-old post keeps 3/4.
# Ids grow linearly with time, so an id difference measures age; this is one week of ids.
_ID_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
RECENCY_SCALE_IDS = float(id_at(_ID_EPOCH + timedelta(days=7)) - id_at(_ID_EPOCH))


@dataclass(frozen=True)
class Page:
    """A page of results; `largest` bounds `limit` (Mastodon lets an account search ask for more)."""

    limit: int = 20
    offset: int = 0
    max_id: int | None = None
    min_id: int | None = None
    largest: int = MAX_LIMIT

    def checked(self) -> "Page":
        if self.limit < 1 or self.offset < 0:
            raise ValidationFailed("limit must be positive and offset not negative", code="bad_page")
        return Page(min(self.limit, self.largest), self.offset, self.max_id, self.min_id, self.largest)


def _hidden_authors_sql(viewer_id: int) -> tuple[str, list[Any]]:
    """A subquery of account ids hidden from the viewer: blocked either way, or muted (until the mute ends)."""
    block = Block._meta.db_table
    mute = Mute._meta.db_table
    sql = (
        f"SELECT blocked_id FROM {block} WHERE blocker_id = %s "  # noqa: S608
        f"UNION SELECT blocker_id FROM {block} WHERE blocked_id = %s "
        f"UNION SELECT muted_id FROM {mute} WHERE muter_id = %s AND (expires_at IS NULL OR expires_at > %s)"
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return sql, [viewer_id, viewer_id, viewer_id, now]


def _clean_query(query: str) -> str:
    query = query.strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationFailed(f"A search is at most {MAX_QUERY_LENGTH} characters", code="query_too_long")
    return query


def posts_search(*, query: str, viewer: Any, page: Page = Page(), author_id: int | None = None) -> list[int]:
    """Ids of live posts matching every part of `query`, best first.

    The order is text relevance (bm25 on SQLite, ts_rank on PostgreSQL) scaled by recency, which is
    read from the time-sortable id, so no date arithmetic differs between the two databases.
    Relevance is computed for the newest CANDIDATES matches only (before `max_id` when paging), so a
    word found in half of all posts costs the same as a rare one; older matches are reached by max_id.
    Public posts are searchable by everyone; other posts only by their author. The SQL is assembled
    from table names and fixed fragments only; the query text and every value are parameters.
    """
    page = page.checked()
    parts = query_parts(_clean_query(query))
    if not parts:
        return []
    postgres = store.is_postgres()
    key = "post_id" if postgres else "rowid"
    bounds: list[str] = []
    bound_params: list[Any] = []
    if page.max_id is not None:
        bounds.append(f"AND {key} < %s")
        bound_params.append(page.max_id)
    if page.min_id is not None:
        bounds.append(f"AND {key} > %s")
        bound_params.append(page.min_id)
    # One account's posts are few: rank all of its matches rather than the newest of everyone's.
    cap = "" if author_id is not None else f"ORDER BY {key} DESC LIMIT {CANDIDATES}"

    where = ["p.deleted_at IS NULL"]
    params: list[Any] = []
    if viewer is None:
        where.append("p.visibility = %s")
        params.append(Visibility.PUBLIC.value)
    else:
        hidden_sql, hidden_params = _hidden_authors_sql(viewer.pk)
        where.append("(p.visibility = %s OR p.author_id = %s)")
        params += [Visibility.PUBLIC.value, viewer.pk]
        where.append(f"p.author_id NOT IN ({hidden_sql})")
        params += hidden_params
    if author_id is not None:
        where.append("p.author_id = %s")
        params.append(author_id)

    recency = f"(0.5 + 0.5 / (1.0 + (%s - p.id) / {RECENCY_SCALE_IDS}))"
    post_table = Post._meta.db_table
    if postgres:
        tsquery = tsquery_text(parts)
        # The candidates go in as an id array so the plan is always primary-key lookups, whatever the
        # statistics say (a join on a derived table may be planned as a scan of every post).
        sql = (
            f"SELECT d.post_id FROM {store.TABLE} d JOIN {post_table} p ON p.id = d.post_id "  # noqa: S608
            f"WHERE d.post_id = ANY(ARRAY(SELECT post_id FROM {store.TABLE} "
            f"WHERE document @@ %s::tsquery {' '.join(bounds)} {cap})) AND {' AND '.join(where)} "
            f"ORDER BY ts_rank(d.document, %s::tsquery) * {recency} DESC, p.id DESC LIMIT %s OFFSET %s"
        )
        all_params = [tsquery, *bound_params, *params, tsquery]
    else:
        matches = (
            f"SELECT rowid AS id, bm25({store.TABLE}) AS rel FROM {store.TABLE} "  # noqa: S608
            f"WHERE {store.TABLE} MATCH %s {' '.join(bounds)} {cap}"
        )
        # bm25() is negative, more negative for a better match: the best sort first, ascending.
        sql = (
            f"SELECT d.id FROM ({matches}) d JOIN {post_table} p ON p.id = d.id "  # noqa: S608
            f"WHERE {' AND '.join(where)} "
            f"ORDER BY d.rel * {recency} ASC, p.id DESC LIMIT %s OFFSET %s"
        )
        all_params = [fts5_match(parts), *bound_params, *params]
    all_params += [id_at(datetime.now(UTC)), page.limit, page.offset]
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        return [row[0] for row in cursor.fetchall()]


def _account_query_text(query: str) -> str:
    return normalise(_clean_query(query)).lstrip("@").split("@", 1)[0].strip()


def accounts_search(
    *, query: str, viewer: Any, page: Page = Page(), following_only: bool = False
) -> list[Any]:
    """Active accounts whose username or display name starts with the query, or a later word of the
    display name does ("Hotpot" finds "Chen's Hotpot"), or (for Chinese, which has no word breaks) whose
    name contains it. Exact username first, then prefixes, then the rest."""
    page = page.checked()
    text = _account_query_text(query)
    if not text:
        return []
    user_model = get_user_model()
    match = (
        Q(username__istartswith=text)
        | Q(display_name__istartswith=text)
        | Q(display_name__icontains=f" {text}")
    )
    if contains_cjk(text):
        match |= Q(display_name__icontains=text) | Q(username__icontains=text)
    users: QuerySet[Any] = user_model.objects.filter(match, is_active=True)
    if viewer is not None:
        users = users.exclude(pk__in=hidden_author_ids(viewer.pk))
        if following_only:
            users = users.filter(pk__in=Follow.objects.filter(follower=viewer).values("followee_id"))
    users = users.annotate(
        closeness=Case(
            When(username__iexact=text, then=Value(0)),
            When(username__istartswith=text, then=Value(1)),
            When(display_name__istartswith=text, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        )
    ).order_by("closeness", "username")
    return list(users[page.offset : page.offset + page.limit])


def topic_query_text(query: str) -> str:
    """`#团购#`, `#Deals` and `deals` all name the same topic key."""
    return normalise(_clean_query(query)).strip().strip("#").strip()


def topic_named(name: str) -> Topic:
    """The topic `name` names (`#话题#`, `#tag` or bare, any case), as the topic timeline reads it;
    NotFound for a topic nobody has used."""
    topic = Topic.objects.filter(name=topic_key(name.strip().strip("#"))[:100]).first()
    if topic is None:
        raise NotFound("Record not found")
    return topic


def topics_search(*, query: str, page: Page = Page()) -> list[Topic]:
    """Topics whose name starts with the query, then those containing it; busier ones first. Each
    topic's `posts_count` is how many posts use it as it stands (its row's count and its shares', see
    `Topic`)."""
    page = page.checked()
    text = topic_query_text(query)
    if not text:
        return []
    shares = (
        TopicCount.objects.filter(topic=OuterRef("pk"))
        .order_by()
        .values("topic")
        .annotate(total=Sum("posts_count"))
        .values("total")
    )
    topics = (
        Topic.objects.filter(name__icontains=text)
        .annotate(
            closeness=Case(
                When(name=text, then=Value(0)),
                When(name__startswith=text, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            ),
            uses=F("posts_count") + Coalesce(Subquery(shares, output_field=IntegerField()), Value(0)),
        )
        .order_by("closeness", "-uses", "name")
    )
    found: list[Topic] = list(topics[page.offset : page.offset + page.limit])
    for topic in found:
        topic.posts_count = max(topic.uses, 0)  # type: ignore[attr-defined]
    return found
