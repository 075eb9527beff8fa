"""The versions a rendered status depends on, read without reading the rows: a kept rendering of a post
is still right while its own row, its parent's and its root's, their authors' and counters' rows and
their images are the versions it was made from (PostgreSQL's xmin and ctid; SQLite's `row_version`,
see `row_versions`), and the viewer's own like, repost, bookmark and pin flags are read with them."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model

from weituan.core.rows import db_vendor, fetch_rows
from weituan.microblog.models import AccountStats, Bookmark, Like, MediaAttachment, Pin, Post, PostKind
from weituan.microblog.queries.rows import placeholders, table
from weituan.microblog.row_versions import COLUMN as ROW_VERSION

User = get_user_model()


@dataclass(slots=True)
class PostVersions:
    """What a timeline page needs to know of its posts before rendering any: which were found (`asked`
    holds those of the ids asked for) and deleted, each post's parent and root, a version of each post
    that changes whenever anything a rendered status shows of it changes (its row, its author's row
    and counters, its images), and the viewer's likes, reposts, bookmarks and pins among them.

    A version is made of row versions, read without the rows: `xmin` and `ctid` on PostgreSQL, new on
    every update; on SQLite the `row_version` its triggers renew (see `microblog.row_versions`).
    """

    links: dict[int, tuple[int | None, int | None]]
    versions: dict[int, Any]
    deleted: set[int]
    asked: set[int]
    liked: set[int]
    reposted: set[int]
    bookmarked: set[int]
    pinned: set[int]

    def fingerprint(self, post_id: int) -> tuple[Any, ...]:
        """The versions a rendered status of `post_id` depends on: its own, its parent's and root's."""
        parent_id, root_id = self.links[post_id]
        return (
            self.versions[post_id],
            self.versions.get(parent_id) if parent_id else None,
            self.versions.get(root_id) if root_id else None,
        )


@cache  # one text per store and number of ids (always one on PostgreSQL), the same for the process
def _versions_sql(vendor: str, count: int) -> str:
    posts, users, stats, media = table(Post), table(User), table(AccountStats), table(MediaAttachment)
    likes, bookmarks, pins = table(Like), table(Bookmark), table(Pin)
    if vendor == "postgresql":
        # The ids come as one array literal, read once.
        among = "id = ANY(%s::bigint[])"
        row = "xmin, ctid"
        images = (
            f"(SELECT string_agg(concat(m.xmin, '.', m.ctid), ',') FROM {media} m WHERE m.post_id = w.id)"  # noqa: S608
        )
        version = (
            f"concat(w.xmin, '/', w.ctid, '/', u.xmin, '/', u.ctid, '/', s.xmin, '/', s.ctid, '/', {images})"
        )
    else:
        among = f"id IN ({placeholders(count)})"
        row = ROW_VERSION
        images = f"(SELECT group_concat(m.id || '.' || m.{ROW_VERSION}, ',') FROM {media} m WHERE m.post_id = w.id)"  # noqa: S608
        version = (
            f"w.{ROW_VERSION} || '/' || u.{ROW_VERSION} || '/' || ifnull(s.{ROW_VERSION}, '') || '/'"
            f" || ifnull({images}, '')"
        )
    p_row = ", ".join(f"p.{column.strip()}" for column in row.split(","))

    def gated(anywhere: str, probe: str) -> str:
        # A viewer's flag on a post is one probe per post, except for posts at or above the page's
        # oldest asked id when the viewer has none there: the gate, one look at the same index for all
        # of them, made once per part of the statement that reads posts (most readers like, bookmark
        # and repost nothing on the page).
        return f"CASE WHEN w.id < %s OR (SELECT EXISTS({anywhere})) THEN {probe} ELSE FALSE END"

    def kept(flag_table: str, alias: str) -> str:
        # Whether the viewer keeps a like (a bookmark) of the post, by (user, post).
        return gated(
            f"SELECT 1 FROM {flag_table} g WHERE g.user_id = %s AND g.post_id >= %s",  # noqa: S608
            f"EXISTS(SELECT 1 FROM {flag_table} {alias} WHERE {alias}.user_id = %s AND {alias}.post_id = w.id)",  # noqa: S608
        )

    # Whether the viewer reposted the post (a plain repost, not deleted), by (author, parent): any post
    # of theirs whose parent is at or above the page's oldest asked id lets the page's posts be probed.
    reposted = gated(
        f"SELECT 1 FROM {posts} g WHERE g.author_id = %s AND g.parent_id >= %s",  # noqa: S608
        f"EXISTS(SELECT 1 FROM {posts} v WHERE v.parent_id = w.id AND v.kind = %s AND v.author_id = %s"  # noqa: S608
        " AND v.comment = '' AND v.deleted_at IS NULL)",
    )

    # The posts asked for are read once, with what the versions need of them; then their parents and
    # roots. Only one's own posts can be pinned by one.
    return (
        f"WITH a AS (SELECT id, parent_id, root_id, author_id, deleted_at, {row}"  # noqa: S608
        f" FROM {posts} WHERE {among}),"
        " w AS (SELECT a.*, 1 AS asked FROM a UNION ALL"
        f" SELECT p.id, p.parent_id, p.root_id, p.author_id, p.deleted_at, {p_row}, 0 FROM ("
        "SELECT parent_id AS want FROM a WHERE parent_id IS NOT NULL"
        f" UNION ALL SELECT root_id FROM a WHERE root_id IS NOT NULL) r JOIN {posts} p ON p.id = r.want)"
        f" SELECT w.id, w.parent_id, w.root_id, w.deleted_at IS NOT NULL, {version},"
        f" {kept(likes, 'l')}, {reposted}, {kept(bookmarks, 'b')},"
        f" CASE WHEN w.author_id = %s THEN EXISTS(SELECT 1 FROM {pins} x WHERE x.user_id = %s"
        " AND x.post_id = w.id) ELSE FALSE END,"
        f" w.asked FROM w JOIN {users} u ON u.id = w.author_id"
        f" LEFT JOIN {stats} s ON s.user_id = w.author_id"
    )


def post_versions(post_ids: Sequence[int], viewer_id: int) -> PostVersions:
    """The versions of `post_ids` and of their parents and roots, with `viewer_id`'s flags: one query
    that reads row versions, not rows."""
    wanted = list(dict.fromkeys(int(post_id) for post_id in post_ids))
    found = PostVersions(
        links={},
        versions={},
        deleted=set(),
        asked=set(),
        liked=set(),
        reposted=set(),
        bookmarked=set(),
        pinned=set(),
    )
    if not wanted:
        return found
    vendor = db_vendor()
    ids: list[Any] = wanted
    if vendor == "postgresql":
        ids = ["{" + ",".join(map(str, wanted)) + "}"]
    sql = _versions_sql(vendor, 0 if vendor == "postgresql" else len(wanted))
    lowest = min(wanted)
    kept = [lowest, viewer_id, lowest, viewer_id]  # a like's (a bookmark's) CASE, then its probe
    reposted = [lowest, viewer_id, lowest, PostKind.REPOST.value, viewer_id]
    params = [*ids, *kept, *reposted, *kept, viewer_id, viewer_id]
    rows = fetch_rows(sql, params)
    for post_id, parent_id, root_id, deleted, version, liked, reblogged, bookmarked, pinned, asked in rows:
        found.links[post_id] = (parent_id, root_id)
        found.versions[post_id] = version
        if deleted:
            found.deleted.add(post_id)
        if asked:
            found.asked.add(post_id)
        if liked:
            found.liked.add(post_id)
        if reblogged:
            found.reposted.add(post_id)
        if bookmarked:
            found.bookmarked.add(post_id)
        if pinned:
            found.pinned.add(post_id)
    return found
