"""Post reads: the permission-checked fetch, hydrating many posts at once for display, and comment lists.

`posts_hydrate` is what every list of posts goes through (timelines, profiles, topics, search, the API):
it loads posts with their authors, parents and roots, images, mentions, topics, author counters and the
viewer's likes and reposts in a fixed number of queries, however many posts are asked for.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F

from weituan.core.errors import NotFound
from weituan.microblog.models import (
    Like,
    MediaAttachment,
    Mention,
    Post,
    PostKind,
    PostTopic,
    Topic,
    Visibility,
)
from weituan.microblog.queries.relations import hidden_author_ids, is_blocked_between, is_following
from weituan.microblog.stats import AccountCounts, account_counts

MAX_CONTEXT_COMMENTS = 400


@dataclass(slots=True, eq=False)
class PostView:
    """A post ready to show: everything a page or an API entity needs, already loaded.

    `parent` and `root` are views too (for a repost: the post forwarded and the original; for a comment:
    the post commented on and its root); their own `parent`/`root` are set only when they were loaded.
    """

    post: Post
    author: Any
    author_counts: AccountCounts
    media: list[MediaAttachment] = field(default_factory=list)
    mentions: list[Any] = field(default_factory=list)
    topics: list[Topic] = field(default_factory=list)
    liked_by_viewer: bool = False
    reposted_by_viewer: bool = False
    parent: "PostView | None" = None
    root: "PostView | None" = None
    reply_to_author_id: int | None = None

    @property
    def id(self) -> int:
        return self.post.id

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


def _base_views(rows: Iterable[Post], counts: dict[int, AccountCounts]) -> dict[int, PostView]:
    return {
        post.id: PostView(post=post, author=post.author, author_counts=counts[post.author_id])
        for post in rows
    }


def posts_hydrate(
    post_ids: Sequence[int], viewer: Any = None, *, include_deleted: bool = False
) -> list[PostView]:
    """Views of `post_ids`, in the order given; missing ids (and deleted posts, unless asked) are left out.

    Runs at most 7 queries whatever the number of posts (5 without a viewer): posts with their
    authors, parents and roots; images; mentions; topics; author counters; the viewer's likes; the
    viewer's reposts. Permission checks are the caller's: this shows what it is given.
    """
    wanted = list(dict.fromkeys(int(post_id) for post_id in post_ids))
    if not wanted:
        return []
    rows: list[Post] = list(
        Post.objects.filter(id__in=wanted)
        .select_related("author", "parent__author", "root__author")
        .annotate(reply_to_author=F("reply_to__author_id"))
    )
    related: dict[int, Post] = {}
    for asked in rows:
        for other in (asked.parent, asked.root):
            if other is not None:
                related.setdefault(other.id, other)
    every: dict[int, Post] = {post.id: post for post in [*related.values(), *rows]}
    all_ids = sorted(every)
    counts = account_counts(sorted({post.author_id for post in every.values()}))
    views = _base_views(every.values(), counts)
    for post in every.values():
        view = views[post.id]
        view.parent = views.get(post.parent_id) if post.parent_id else None
        view.root = views.get(post.root_id) if post.root_id else None
        view.reply_to_author_id = getattr(post, "reply_to_author", None)

    for media in MediaAttachment.objects.filter(post_id__in=all_ids).order_by("post_id", "position", "id"):
        assert media.post_id is not None
        views[media.post_id].media.append(media)
    for mention in Mention.objects.filter(post_id__in=all_ids).select_related("user").order_by("id"):
        views[mention.post_id].mentions.append(mention.user)
    for use in PostTopic.objects.filter(post_id__in=all_ids).select_related("topic").order_by("id"):
        views[use.post_id].topics.append(use.topic)
    if viewer is not None:
        liked = set(Like.objects.filter(user=viewer, post_id__in=all_ids).values_list("post_id", flat=True))
        reposted = set(
            Post.objects.filter(
                author=viewer, kind=PostKind.REPOST, parent_id__in=all_ids, deleted_at__isnull=True
            ).values_list("parent_id", flat=True)
        )
        for post_id, view in views.items():
            view.liked_by_viewer = post_id in liked
            view.reposted_by_viewer = post_id in reposted

    asked_ids = {post.id for post in rows}
    return [
        views[post_id]
        for post_id in wanted
        if post_id in asked_ids and (include_deleted or not views[post_id].is_deleted)
    ]


def post_view_for_user(user: Any, post_id: int) -> PostView:
    """One post, permission-checked and hydrated for `user`."""
    post = post_get_for_user(user, post_id)
    return posts_hydrate([post.id], user)[0]


def _page_ids(
    rows: Any, *, max_id: int | None, since_id: int | None, min_id: int | None, limit: int
) -> list[int]:
    """Ids of a page of `rows`, newest first, Mastodon style (`min_id` gives the page just above)."""
    if max_id is not None:
        rows = rows.filter(id__lt=max_id)
    lower = min_id if min_id is not None else since_id
    if lower is not None:
        rows = rows.filter(id__gt=lower)
    ascending = min_id is not None
    ids = list(rows.order_by("id" if ascending else "-id").values_list("id", flat=True)[:limit])
    if ascending:
        ids.reverse()
    return ids


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
    ids = _page_ids(rows, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
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
