"""Post reads: the permission-checked fetch, hydrating many posts at once for display, and comment lists.

`posts_hydrate` is what every list of posts goes through (timelines, profiles, topics, search, the API):
it loads posts with their authors, parents and roots, images, mentions, topics, author counters and the
viewer's likes and reposts in a fixed number of queries, however many posts are asked for.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from weituan.core.errors import NotFound
from weituan.core.rows import fetch_rows
from weituan.microblog.models import (
    AccountStats,
    Bookmark,
    Like,
    MediaAttachment,
    Mention,
    Pin,
    Post,
    PostKind,
    PostTopic,
    Topic,
    Visibility,
)
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.relations import (
    hidden_author_ids,
    hiding_relations,
    is_blocked_between,
    is_following,
)
from weituan.microblog.queries.rows import (
    ModelColumns,
    convert_value,
    ids_in,
    placeholders,
    table,
)
from weituan.microblog.stats import AccountCounts
from weituan.microblog.text import chain_text

User = get_user_model()

MAX_CONTEXT_COMMENTS = 400


@dataclass(slots=True, eq=False)
class PostView:
    """A post ready to show: everything a page or an API entity needs, already loaded.

    `parent` and `root` are views too (for a repost: the post forwarded and the original; for a comment:
    the post commented on and its root); their own `parent`/`root` are set only when they were loaded.

    `hidden_from_viewer` is set on the post forwarded and the original of a repost read for a viewer
    when a block or mute stands between the viewer and their author ("blocked_by", "blocking" or
    "muting", see `hiding_relations`): the repost is shown without them. Views read for nobody (what
    is rendered once and kept for many readers) never carry it.

    A repost's chain (`//@name: comment` for each hop above it) is shown as `shown_chain` and
    `shown_text` give it: the hops whose authors are hidden from the viewer (`chain_hidden`, their
    account ids; only for a viewer) are left out, as the viewer never sees those people's comments
    under a post either, and the hops whose reposts were deleted (`chain_deleted`, their post ids; for
    every reader) read CHAIN_HOP_DELETED in place of their comment, keeping who the hops below answered.
    """

    post: Post
    author: Any
    author_counts: AccountCounts
    media: list[MediaAttachment] = field(default_factory=list)
    mentions: list[Any] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    liked_by_viewer: bool = False
    reposted_by_viewer: bool = False
    bookmarked_by_viewer: bool = False
    pinned_by_viewer: bool = False  # the viewer's own post, pinned to their profile
    parent: "PostView | None" = None
    root: "PostView | None" = None
    reply_to_author_id: int | None = None
    hidden_from_viewer: str = ""
    chain_hidden: frozenset[int] = frozenset()
    chain_deleted: frozenset[int] = frozenset()
    # The keywords (or the filter's title, for a filtered post) of the reader's warning filters that
    # match it, where a page folds it behind them; set by the page, empty otherwise.
    filtered_by: tuple[str, ...] = ()
    # A hiding filter of the reader matches it: shown only as the original a quote shows, it is left out
    # of that quote (set by the page, as `filtered_by`).
    filter_hidden: bool = False

    @property
    def id(self) -> int:
        return self.post.id

    @property
    def shown_chain(self) -> list[dict[str, Any]]:
        """The hops of the chain as shown (see the class docstring), each {"post_id", "user_id",
        "username", "comment", "deleted"}; a deleted hop's comment is empty."""
        return [
            {**hop, "comment": "", "deleted": True}
            if hop.get("post_id") in self.chain_deleted
            else {**hop, "deleted": False}
            for hop in self.post.chain
            if hop.get("user_id") not in self.chain_hidden
        ]

    @property
    def shown_text(self) -> str:
        """The post's text with its chain as shown (see the class docstring)."""
        if not self.chain_hidden and not self.chain_deleted:
            return str(self.post.text)
        return chain_text(self.post.comment, self.shown_chain)

    @property
    def is_deleted(self) -> bool:
        return self.post.deleted_at is not None


def post_visible_to(post: Post, viewer: Any) -> bool:
    """Whether `viewer` (a user or None) may see `post`: live, not blocked either way, and for
    followers-only posts, a follower."""
    if post.deleted_at is not None:
        return False
    viewer_id = viewer.pk if viewer is not None else None
    if viewer_id == post.author_id:
        return True
    if viewer_id is not None and is_blocked_between(viewer_id, post.author_id):
        return False
    if post.visibility == Visibility.PRIVATE:
        return viewer_id is not None and is_following(viewer_id, post.author_id)
    return True


def post_get_for_user(user: Any, post_id: int) -> Post:
    """The post, if `user` may see it; otherwise NotFound (deleted, blocked and hidden look alike, as on
    Mastodon, so a blocked user learns nothing)."""
    post = Post.objects.select_related("author").filter(id=post_id).first()
    if post is None or not post_visible_to(post, user):
        raise NotFound("Record not found")
    return post


_COLUMNS: dict[tuple[str, str], ModelColumns] = {}


def _columns(model: type[Any], alias: str) -> ModelColumns:
    key = (f"{connection.vendor}:{model._meta.label}", alias)
    found = _COLUMNS.get(key)
    if found is None:
        found = _COLUMNS[key] = ModelColumns(model, alias)
    return found


def _counts_of(row: Sequence[Any], start: int) -> AccountCounts:
    followers, following, posts, last_post_at = row[start : start + 4]
    if followers is None:
        return AccountCounts()
    return AccountCounts(
        followers=followers,
        following=following,
        posts=posts,
        last_post_at=convert_value(AccountStats._meta.get_field("last_post_at"), last_post_at),
    )


@dataclass(slots=True)
class PostRows:
    """The rows of some posts and of their parents and roots, as one query returned them: each row holds
    the post, its author, the author's counters and the author of the comment it answers.

    A row is a plain tuple, so it can be compared with an earlier read of the same post: every fact a
    rendered status shows that can change (counters, edits, deletion, the author's profile and counters)
    is in the rows of the post, its parent and its root. When read for a viewer, `liked`, `reposted`,
    `bookmarked` and `pinned` hold the viewer's flags on those posts (None otherwise).
    """

    by_id: dict[int, tuple[Any, ...]]
    asked: set[int]
    liked: set[int] | None = None
    reposted: set[int] | None = None
    bookmarked: set[int] | None = None
    pinned: set[int] | None = None


def _media_mark() -> str:
    """A column that changes when an image of the post gets a new description or focal point (what can
    change of an attached image), so rows read earlier tell a stale rendering."""
    media = table(MediaAttachment)
    if connection.vendor == "postgresql":
        mark = "m.id || ':' || m.description || ':' || concat(m.focus_x, ',', m.focus_y)"
        return f"(SELECT string_agg({mark}, chr(31)) FROM {media} m WHERE m.post_id = p.id)"  # noqa: S608
    mark = "m.id || ':' || m.description || ':' || ifnull(m.focus_x, '') || ',' || ifnull(m.focus_y, '')"
    return f"(SELECT group_concat({mark}, char(31)) FROM {media} m WHERE m.post_id = p.id)"  # noqa: S608


_POST_SQL: dict[tuple[str, int, bool], str] = {}


def _post_sql(wanted: list[int], *, with_viewer: bool) -> tuple[str, list[Any]]:
    """The statement of `post_rows` and its parameters after the viewer's. Its text depends only on
    the store, the number of ids (one array on PostgreSQL) and the viewer flags, and is made once."""
    vendor = connection.vendor
    key = (vendor, 0 if vendor == "postgresql" else len(wanted), with_viewer)
    sql = _POST_SQL.get(key)
    if sql is None:
        sql = _POST_SQL[key] = _post_sql_text(wanted, with_viewer=with_viewer)
    return sql, ([list(wanted)] if vendor == "postgresql" else list(wanted)) * 3


def _post_sql_text(wanted: list[int], *, with_viewer: bool) -> str:
    post_cols, user_cols = _columns(Post, "p"), _columns(User, "u")
    posts, users, stats = table(Post), table(User), table(AccountStats)
    among, _ = ids_in("id", wanted)
    # The viewer's like, live plain repost, bookmark and pin of each post ride along, instead of a
    # query of their own.
    flags = (
        f", EXISTS(SELECT 1 FROM {table(Like)} l WHERE l.user_id = %s AND l.post_id = p.id)"  # noqa: S608
        f", EXISTS(SELECT 1 FROM {posts} v WHERE v.parent_id = p.id AND v.kind = %s AND v.author_id = %s"
        " AND v.comment = '' AND v.deleted_at IS NULL)"
        f", EXISTS(SELECT 1 FROM {table(Bookmark)} b WHERE b.user_id = %s AND b.post_id = p.id)"
        f", EXISTS(SELECT 1 FROM {table(Pin)} x WHERE x.user_id = %s AND x.post_id = p.id)"
        if with_viewer
        else ""
    )
    last_post_at = "+s.last_post_at" if connection.vendor == "sqlite" else "s.last_post_at"
    return (
        f"SELECT {post_cols.sql_text_times}, {user_cols.sql_text_times}, s.followers_count,"  # noqa: S608
        f" s.following_count, s.posts_count, {last_post_at}, {_media_mark()}, r.author_id{flags},"
        " w.asked FROM ("
        f"SELECT id AS want, 1 AS asked FROM {posts} WHERE {among}"
        f" UNION ALL SELECT parent_id, 0 FROM {posts} WHERE {among} AND parent_id IS NOT NULL"
        f" UNION ALL SELECT root_id, 0 FROM {posts} WHERE {among} AND root_id IS NOT NULL"
        f") w JOIN {posts} p ON p.id = w.want JOIN {users} u ON u.id = p.author_id"
        f" LEFT JOIN {stats} s ON s.user_id = p.author_id"
        f" LEFT JOIN {posts} r ON r.id = p.reply_to_id"
    )


def post_rows(post_ids: Sequence[int], viewer_id: int | None = None) -> PostRows:
    """The rows of `post_ids` and of their parents and roots, with `viewer_id`'s flags, in one query."""
    wanted = list(dict.fromkeys(int(post_id) for post_id in post_ids))
    with_viewer = viewer_id is not None
    found = PostRows(
        by_id={},
        asked=set(),
        liked=set() if with_viewer else None,
        reposted=set() if with_viewer else None,
        bookmarked=set() if with_viewer else None,
        pinned=set() if with_viewer else None,
    )
    if not wanted:
        return found
    sql, params = _post_sql(wanted, with_viewer=with_viewer)
    if with_viewer:
        params = [viewer_id, PostKind.REPOST.value, viewer_id, viewer_id, viewer_id, *params]
    for row in fetch_rows(sql, params):
        post_id = row[0]
        if row[-1]:
            found.asked.add(post_id)
        if with_viewer:
            flags = (found.liked, found.reposted, found.bookmarked, found.pinned)
            for flag, value in zip(flags, row[-5:-1], strict=True):
                if value:
                    assert flag is not None
                    flag.add(post_id)
            found.by_id[post_id] = tuple(row[:-5])
        else:
            found.by_id[post_id] = tuple(row[:-1])
    return found


_POST_ATTNAMES = [field.attname for field in Post._meta.concrete_fields]
_PARENT_AT, _ROOT_AT, _DELETED_AT = (
    _POST_ATTNAMES.index(name) for name in ("parent_id", "root_id", "deleted_at")
)


def _related_ids(row: tuple[Any, ...]) -> tuple[int | None, int | None]:
    return row[_PARENT_AT], row[_ROOT_AT]


def post_row_deleted(rows: PostRows, post_id: int) -> bool:
    return rows.by_id[post_id][_DELETED_AT] is not None


def post_fingerprint(rows: PostRows, post_id: int) -> tuple[Any, ...]:
    """What a rendered status of `post_id` depends on: its row and its parent's and root's rows."""
    row = rows.by_id[post_id]
    parent_id, root_id = _related_ids(row)
    return (
        row,
        rows.by_id.get(parent_id) if parent_id else None,
        rows.by_id.get(root_id) if root_id else None,
    )


def _views_from_rows(rows: PostRows, only: set[int] | None = None) -> dict[int, PostView]:
    """Views of the rows (those of `only` and their parents and roots, when given), linked together."""
    post_cols, user_cols = _columns(Post, "p"), _columns(User, "u")
    user_at = post_cols.width
    stats_at = user_at + user_cols.width
    chosen: Iterable[int] = rows.by_id
    if only is not None:
        needed = set(only)
        for post_id in only:
            needed.update(i for i in _related_ids(rows.by_id[post_id]) if i and i in rows.by_id)
        chosen = needed
    views: dict[int, PostView] = {}
    authors: dict[int, Any] = {}
    counts: dict[int, AccountCounts] = {}
    for post_id in chosen:
        row = rows.by_id[post_id]
        post = post_cols.build(row)
        author = authors.get(post.author_id)
        if author is None:
            author = authors[post.author_id] = user_cols.build(row, user_at)
            counts[post.author_id] = _counts_of(row, stats_at)
        post._state.fields_cache["author"] = author
        views[post_id] = PostView(
            post=post, author=author, author_counts=counts[post.author_id], reply_to_author_id=row[-1]
        )
    for view in views.values():
        post = view.post
        view.parent = views.get(post.parent_id) if post.parent_id else None
        view.root = views.get(post.root_id) if post.root_id else None
        # As select_related would have: reading post.parent or post.root costs no query.
        if view.parent is not None or not post.parent_id:
            post._state.fields_cache["parent"] = view.parent.post if view.parent is not None else None
        if view.root is not None or not post.root_id:
            post._state.fields_cache["root"] = view.root.post if view.root is not None else None
    return views


def _attach_extras(views: dict[int, PostView], all_ids: list[int]) -> None:
    """Images, mentioned accounts and topics of every view: one query each."""
    marks = placeholders(len(all_ids))
    media_cols, user_cols, topic_cols = (
        _columns(MediaAttachment, "m"),
        _columns(User, "u"),
        _columns(Topic, "t"),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {media_cols.sql} FROM {table(MediaAttachment)} m WHERE m.post_id IN ({marks})"  # noqa: S608
            " ORDER BY m.post_id, m.position, m.id",
            all_ids,
        )
        for row in cursor.fetchall():
            media = media_cols.build(row)
            views[media.post_id].media.append(media)
        cursor.execute(
            f"SELECT x.post_id, {user_cols.sql} FROM {table(Mention)} x JOIN {table(User)} u"  # noqa: S608
            f" ON u.id = x.user_id WHERE x.post_id IN ({marks}) ORDER BY x.id",
            all_ids,
        )
        for row in cursor.fetchall():
            views[row[0]].mentions.append(user_cols.build(row, 1))
        cursor.execute(
            f"SELECT x.post_id, {topic_cols.sql} FROM {table(PostTopic)} x JOIN {table(Topic)} t"  # noqa: S608
            f" ON t.id = x.topic_id WHERE x.post_id IN ({marks}) ORDER BY x.id",
            all_ids,
        )
        for row in cursor.fetchall():
            views[row[0]].topics.append(topic_cols.build(row, 1))


def viewer_flags(post_ids: Sequence[int], viewer_id: int) -> tuple[set[int], set[int], set[int], set[int]]:
    """Which of `post_ids` the viewer liked, which they reposted (a live plain repost of it: what
    Mastodon calls a reblog, which unreblog takes back; a forward with a comment is a post of its own),
    which they keep (bookmarks) and which they pinned: one query."""
    if not post_ids:
        return set(), set(), set(), set()
    marks = placeholders(len(post_ids))
    sql = (
        f"SELECT 1, post_id FROM {table(Like)} WHERE user_id = %s AND post_id IN ({marks})"  # noqa: S608
        f" UNION ALL SELECT 2, parent_id FROM {table(Post)} WHERE author_id = %s AND kind = %s"
        f" AND parent_id IN ({marks}) AND comment = '' AND deleted_at IS NULL"
        f" UNION ALL SELECT 3, post_id FROM {table(Bookmark)} WHERE user_id = %s AND post_id IN ({marks})"
        f" UNION ALL SELECT 4, post_id FROM {table(Pin)} WHERE user_id = %s AND post_id IN ({marks})"
    )
    params: list[Any] = [
        viewer_id,
        *post_ids,
        viewer_id,
        PostKind.REPOST.value,
        *post_ids,
        viewer_id,
        *post_ids,
        viewer_id,
        *post_ids,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    flags: tuple[set[int], set[int], set[int], set[int]] = (set(), set(), set(), set())
    for mark, post_id in rows:
        flags[mark - 1].add(post_id)
    return flags


def posts_hydrate_rows(
    rows: PostRows,
    post_ids: Sequence[int],
    viewer_id: int | None = None,
    *,
    include_deleted: bool = False,
    only: set[int] | None = None,
) -> list[PostView]:
    """`posts_hydrate` from rows already read, for the viewer `viewer_id` (or nobody); `only` limits
    the views built (and their queries) to those posts and their parents and roots."""
    wanted = list(dict.fromkeys(int(post_id) for post_id in post_ids))
    views = _views_from_rows(rows, only)
    if not views:
        return []
    all_ids = sorted(views)
    _attach_extras(views, all_ids)
    _chain_deleted_mark(views)
    if viewer_id is not None:
        if (
            rows.liked is not None
            and rows.reposted is not None
            and rows.bookmarked is not None
            and rows.pinned is not None
        ):
            liked, reposted, bookmarked, pinned = rows.liked, rows.reposted, rows.bookmarked, rows.pinned
        else:
            liked, reposted, bookmarked, pinned = viewer_flags(all_ids, viewer_id)
        for post_id, view in views.items():
            view.liked_by_viewer = post_id in liked
            view.reposted_by_viewer = post_id in reposted
            view.bookmarked_by_viewer = post_id in bookmarked
            view.pinned_by_viewer = post_id in pinned
        _shown_hidden_mark(views.values(), viewer_id)
    return [
        views[post_id]
        for post_id in wanted
        if post_id in rows.asked and post_id in views and (include_deleted or not views[post_id].is_deleted)
    ]


def _chain_deleted_mark(views: dict[int, PostView]) -> None:
    """Mark the hops of the reposts' chains whose reposts were deleted (`PostView.chain_deleted`). The
    hops loaded with the views (a repost's parent is its first hop) cost nothing; the others one query,
    none when no chain reaches past the post forwarded.

    Renderings kept for many readers (see `post_fingerprint`, `post_versions`) show this too without
    reading the hops: deleting a repost takes it off its root's `reposts_count`, so the root's row,
    which every fingerprint in its tree holds, changes with it."""
    chained = [view for view in views.values() if view.post.kind == PostKind.REPOST and view.post.chain]
    if not chained:
        return
    unread = {
        int(hop["post_id"])
        for view in chained
        for hop in view.post.chain
        if hop.get("post_id") is not None and int(hop["post_id"]) not in views
    }
    deleted = {post_id for post_id, view in views.items() if view.is_deleted}
    if unread:
        gone = Post.objects.filter(id__in=sorted(unread), deleted_at__isnull=False)
        deleted.update(gone.values_list("id", flat=True))
    for view in chained:
        hops = {hop.get("post_id") for hop in view.post.chain}
        view.chain_deleted = frozenset(hop for hop in hops if hop in deleted)


def chain_authors(view: PostView) -> frozenset[int]:
    """The accounts whose comments the chain of `view` carries."""
    return frozenset(int(hop["user_id"]) for hop in view.post.chain if hop.get("user_id") is not None)


def _shown_hidden_mark(views: Iterable[PostView], viewer_id: int) -> None:
    """Mark the posts that reposts show (the one forwarded, the original) whose authors are hidden from
    the viewer (`PostView.hidden_from_viewer`), and the hops of chains by such authors
    (`PostView.chain_hidden`): one query, none when no repost shows another's post."""
    views = list(views)
    shown = [
        inner
        for view in views
        if view.post.kind == PostKind.REPOST
        for inner in (view.parent, view.root)
        if inner is not None and inner.author.pk != viewer_id
    ]
    chained = {view: chain_authors(view) - {viewer_id} for view in views if view.post.chain}
    others = {inner.author.pk for inner in shown}.union(*chained.values())
    if not others:
        return
    hidden = hiding_relations(viewer_id, others)
    for inner in shown:
        inner.hidden_from_viewer = hidden.get(inner.author.pk, "")
    for view, authors in chained.items():
        view.chain_hidden = frozenset(author_id for author_id in authors if author_id in hidden)


def posts_hydrate(
    post_ids: Sequence[int], viewer: Any = None, *, include_deleted: bool = False
) -> list[PostView]:
    """Views of `post_ids`, in the order given; missing ids (and deleted posts, unless asked) are left out.

    Runs 4 queries whatever the number of posts: posts with their authors, author counters, parents
    and roots, and the viewer's likes and reposts of them; images; mentions; topics. For a viewer, a
    fifth when reposts show others' posts: whether a block or mute hides those (or hops of their
    chains). One more when a chain reaches past the post forwarded: which of its hops were deleted
    (see `PostView.shown_chain`). The SQL is written out
    rather than compiled from querysets on every call: timelines hydrate a page per read, and compiling
    seven querysets cost more than running them. Permission checks are the caller's: this shows what
    it is given.
    """
    if not post_ids:
        return []
    viewer_id = viewer.pk if viewer is not None else None
    rows = post_rows(post_ids, viewer_id)
    return posts_hydrate_rows(rows, post_ids, viewer_id, include_deleted=include_deleted)


def post_view_for_user(user: Any, post_id: int) -> PostView:
    """One post, permission-checked and hydrated for `user`."""
    post = post_get_for_user(user, post_id)
    return posts_hydrate([post.id], user)[0]


def comments_page(
    viewer: Any,
    post_id: int,
    *,
    replies_of: int | None = None,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[PostView]:
    """Top comments of a post (or the replies under one comment), newest first, paged by id.

    Comments by accounts the viewer blocked, muted or was blocked by are left out.
    """
    post = post_get_for_user(viewer, post_id)
    rows = Post.objects.filter(parent_id=post.id, kind=PostKind.COMMENT, deleted_at__isnull=True)
    rows = (
        rows.filter(reply_to_id=replies_of) if replies_of is not None else rows.filter(reply_to__isnull=True)
    )
    if viewer is not None:
        rows = rows.exclude(author_id__in=hidden_author_ids(viewer.pk))
    ids = id_page(
        rows.values_list("id", flat=True), max_id=max_id, since_id=since_id, min_id=min_id, limit=limit
    )
    return posts_hydrate(ids, viewer)


@dataclass(frozen=True, slots=True)
class PostContext:
    """Mastodon's context of a post: what it answers (oldest first) and the comments under it."""

    ancestors: list[PostView]
    descendants: list[PostView]


def post_context(viewer: Any, post_id: int) -> PostContext:
    """For a comment: the post it is on (and the top comment for a reply). For a post: its comments and
    replies, oldest first (at most MAX_CONTEXT_COMMENTS)."""
    post = post_get_for_user(viewer, post_id)
    hidden = hidden_author_ids(viewer.pk) if viewer is not None else set()
    ancestor_ids: list[int] = []
    if post.kind == PostKind.COMMENT:
        assert post.parent_id is not None
        ancestor_ids = [post.parent_id] + ([post.reply_to_id] if post.reply_to_id else [])
        descendants_rows = Post.objects.filter(reply_to_id=post.id)
    else:
        descendants_rows = Post.objects.filter(parent_id=post.id, kind=PostKind.COMMENT)
    descendant_ids = list(
        descendants_rows.filter(deleted_at__isnull=True)
        .exclude(author_id__in=hidden)
        .order_by("id")
        .values_list("id", flat=True)[:MAX_CONTEXT_COMMENTS]
    )
    views = {view.id: view for view in posts_hydrate([*ancestor_ids, *descendant_ids], viewer)}
    return PostContext(
        ancestors=[views[i] for i in ancestor_ids if i in views and views[i].author.pk not in hidden],
        descendants=[views[i] for i in descendant_ids if i in views],
    )


def media_get_for_owner(owner: Any, media_id: int) -> MediaAttachment:
    """One of the owner's uploads; anyone else's is NotFound."""
    media = MediaAttachment.objects.filter(id=media_id, owner=owner).first()
    if media is None:
        raise NotFound("Record not found")
    return media
