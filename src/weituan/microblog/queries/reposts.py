"""Repost reads: the repost tree of a post (each hop a node), a repost's full chain, and who reposted or
liked a post."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, Q

from weituan.accounts.queries import users_by_ids
from weituan.core.errors import NotFound
from weituan.microblog.models import Follow, Like, Post, PostKind, Visibility
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.posts import PostView, post_get_for_user, posts_hydrate
from weituan.microblog.queries.relations import followed_among, hidden_author_ids

MAX_TREE_NODES = 20_000


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One hop of a repost tree. The tree's own post is the node with `parent_id` None among the nodes.
    A deleted repost stays in the tree (its reposts hang from it) with `deleted` set and no comment.
    A repost by an account hidden from the reader stays too when reposts the reader may see hang from
    it, `hidden` set, with neither author nor comment."""

    id: int
    parent_id: int | None
    depth: int
    author_id: int | None
    username: str
    display_name: str
    comment: str
    created_at: datetime
    deleted: bool
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class RepostTree:
    """`nodes` in id order (a parent always before its children), as one reader is given them.

    `size` and `max_depth` describe those nodes, not the whole tree, so that they tell a reader
    nothing of the hops left out for them. `size` counts the nodes below the post that are not
    deleted: blanked ones count (the reader is shown them, "not visible"), deleted ones do not (a
    deleted repost stays in the tree for its shape, for every reader). `max_depth` is the depth of
    the deepest node below the post, blanked and deleted ones included, counted from the post (0
    when the reader is given none). A hop left out for the reader counts for neither, and nor does
    anything below it (all of it is left out too). The post's own repost count (`reposts_count`) is
    another number: the public one, the same for everyone.

    `truncated` says the read stopped at the oldest MAX_TREE_NODES hops of the whole tree below the
    post's depth: `nodes`, `size` and `max_depth` then describe that first part only, and the newer
    hops past it (which may be deeper) are neither given nor counted."""

    post_id: int
    root_id: int
    nodes: list[TreeNode]
    size: int
    max_depth: int
    truncated: bool


def _node(post: Post, *, is_top: bool) -> TreeNode:
    deleted = post.deleted_at is not None
    return TreeNode(
        id=post.id,
        parent_id=None if is_top else post.parent_id,
        depth=post.depth,
        author_id=post.author_id,
        username=post.author.username,
        display_name=post.author.display_name,
        comment="" if deleted else (post.comment if post.kind == PostKind.REPOST else post.text),
        created_at=post.created_at,
        deleted=deleted,
    )


def _hidden_node(node: TreeNode) -> TreeNode:
    """`node` as a reader who hides its author sees it: its place in the tree, nothing of theirs."""
    return TreeNode(
        id=node.id,
        parent_id=node.parent_id,
        depth=node.depth,
        author_id=None,
        username="",
        display_name="",
        comment="",
        created_at=node.created_at,
        deleted=node.deleted,
        hidden=True,
    )


def _as_seen_by(nodes: list[TreeNode], hidden: set[int], unseen: set[int]) -> list[TreeNode]:
    """The nodes below the top as a reader sees them who hides the authors `hidden` and may not see
    the reposts `unseen` (followers-only, of accounts they do not follow): such a node that reposts
    the reader sees hang from (at any depth) is kept blanked, so the tree's links stay whole; one with
    none below it is left out, as a list of reposts leaves them out."""
    holding: set[int] = set()  # nodes with a shown node somewhere below them
    shown: list[TreeNode] = []
    for node in reversed(nodes):  # children before their parents
        is_hidden = node.author_id in hidden or node.id in unseen
        if is_hidden and node.id not in holding:
            continue
        shown.append(_hidden_node(node) if is_hidden else node)
        if node.parent_id is not None:
            holding.add(node.parent_id)
    shown.reverse()
    return shown


def repost_tree(post_id: int, viewer: Any = None) -> RepostTree:
    """The repost tree below `post_id` (the whole tree for an original), each hop a node, as `viewer`
    sees it: the hops by accounts hidden from them (a block either way, a mute), and followers-only
    hops of accounts they do not follow, blanked or left out (`_as_seen_by`), and its size and depth
    counted over what is left (see RepostTree). The post itself is shown as the viewer may see it.
    The same queries whatever the tree's size: those fetching the post for the viewer, one for the
    hops, one for the accounts hidden from the viewer (when there are hops) and one for those they
    follow among the authors of followers-only hops (when there are such hops)."""
    top = post_get_for_user(viewer, post_id)
    if top.kind == PostKind.COMMENT:
        raise NotFound("A comment has no repost tree", code="not_found")
    root_id = top.root_id or top.id
    rows = (
        Post.objects.filter(root_id=root_id, kind=PostKind.REPOST, depth__gt=top.depth)
        .select_related("author")
        .order_by("id")
    )
    candidates = list(rows[: MAX_TREE_NODES + 1])
    truncated = len(candidates) > MAX_TREE_NODES
    candidates = candidates[:MAX_TREE_NODES]
    inside = {top.id}
    below: list[TreeNode] = []
    private: dict[int, int] = {}  # followers-only reposts by someone other than the viewer: id -> author
    viewer_id = viewer.pk if viewer is not None else None
    # Ids grow with time, so a parent is always met before its reposts.
    for post in candidates:
        if post.parent_id in inside:
            inside.add(post.id)
            below.append(_node(post, is_top=False))
            if post.visibility == Visibility.PRIVATE and post.author_id != viewer_id:
                private[post.id] = post.author_id
    hidden: set[int] = set()
    if viewer_id is not None and below:
        hidden = hidden_author_ids(viewer_id) - {viewer_id}
    unseen = set(private)
    if viewer_id is not None and private:
        followed = followed_among(viewer_id, set(private.values()))
        unseen = {node_id for node_id, author_id in private.items() if author_id not in followed}
    if hidden or unseen:
        below = _as_seen_by(below, hidden, unseen)
    return RepostTree(
        post_id=top.id,
        root_id=root_id,
        nodes=[_node(top, is_top=True), *below],
        size=sum(1 for node in below if not node.deleted),
        max_depth=max((node.depth - top.depth for node in below), default=0),
        truncated=truncated,
    )


@dataclass(frozen=True, slots=True)
class ChainHop:
    post_id: int
    author_id: int
    username: str
    comment: str
    depth: int
    deleted: bool


def repost_chain(post_id: int, viewer: Any = None) -> list[ChainHop]:
    """Every hop from this post up to its root, this post first and the root last (untrimmed, unlike
    the chain in a repost's text), less the hops above it by accounts hidden from the viewer (a block
    either way, a mute), as a repost's chain is shown to them. One query per hop, and one for those
    accounts."""
    post: Post | None = post_get_for_user(viewer, post_id)
    hidden = hidden_author_ids(viewer.pk) - {viewer.pk} if viewer is not None else set()
    hops: list[ChainHop] = []
    while post is not None:
        if hops and post.author_id in hidden:
            post = _parent_hop(post)
            continue
        deleted = post.deleted_at is not None
        hops.append(
            ChainHop(
                post_id=post.id,
                author_id=post.author_id,
                username=post.author.username,
                comment="" if deleted else (post.comment if post.kind == PostKind.REPOST else post.text),
                depth=post.depth,
                deleted=deleted,
            )
        )
        post = _parent_hop(post)
    return hops


def _parent_hop(post: Post) -> Post | None:
    """The hop above a repost in its chain; None above an original."""
    if post.kind != PostKind.REPOST or post.parent_id is None:
        return None
    return Post.objects.select_related("author").filter(id=post.parent_id).first()


@dataclass(frozen=True, slots=True)
class ActorRow:
    """One account in a "who reposted / liked" list; `cursor` is the repost or like id the list pages by."""

    cursor: int
    user: Any


def reposted_by(
    viewer: Any,
    post_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[ActorRow]:
    """Accounts that reposted the post directly, each once (at its newest repost: a plain one and
    forwards with comments, or several forwards, are one account), newest first, paged by that repost's
    id. A followers-only repost is listed only to its author and their followers, as the repost tree
    shows it."""
    post = post_get_for_user(viewer, post_id)
    rows = Post.objects.filter(parent_id=post.id, kind=PostKind.REPOST, deleted_at__isnull=True)
    public = Q(visibility__in=(Visibility.PUBLIC, Visibility.UNLISTED))
    if viewer is not None:
        followed = Follow.objects.filter(follower_id=viewer.pk).values("followee_id")
        rows = rows.filter(public | Q(author_id=viewer.pk) | Q(author_id__in=followed)).exclude(
            author_id__in=hidden_author_ids(viewer.pk)
        )
    else:
        rows = rows.filter(public)
    newest = rows.order_by().values("author_id").annotate(cursor=Max("id"))
    found = id_page(newest, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit, field="cursor")
    users = users_by_ids(row["author_id"] for row in found)
    return [
        ActorRow(cursor=row["cursor"], user=users[row["author_id"]])
        for row in found
        if row["author_id"] in users
    ]


def liked_by(
    viewer: Any,
    post_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 40,
) -> list[ActorRow]:
    """Accounts that liked the post, newest first, paged by like id."""
    post = post_get_for_user(viewer, post_id)
    rows = Like.objects.filter(post_id=post.id).select_related("user")
    if viewer is not None:
        rows = rows.exclude(user_id__in=hidden_author_ids(viewer.pk))
    found = id_page(rows, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
    return [ActorRow(cursor=row.id, user=row.user) for row in found]


def quotes_of(
    viewer: Any,
    post_id: int,
    *,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[PostView]:
    """The live, unrevoked quotes (reposts with a comment) of the post, newest first, paged by id: of an
    original, those anywhere in its tree (a quote shows the original); of a repost, those made of it.
    Followers-only quotes are left out but the viewer's own, and so are hidden authors' quotes."""
    post = post_get_for_user(viewer, post_id)
    if post.kind == PostKind.COMMENT:
        return []
    below = {"parent_id": post.id} if post.kind == PostKind.REPOST else {"root_id": post.id}
    rows = (
        Post.objects.filter(
            kind=PostKind.REPOST, deleted_at__isnull=True, quote_revoked_at__isnull=True, **below
        )
        .exclude(comment="")
        .only("id")
    )
    public = Q(visibility__in=(Visibility.PUBLIC, Visibility.UNLISTED))
    if viewer is not None:
        rows = rows.filter(public | Q(author_id=viewer.pk)).exclude(
            author_id__in=hidden_author_ids(viewer.pk)
        )
    else:
        rows = rows.filter(public)
    found = id_page(rows, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
    return posts_hydrate([row.id for row in found], viewer)
