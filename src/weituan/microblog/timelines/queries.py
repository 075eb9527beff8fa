"""Timeline reads: home (from the store), an author's posts, a topic's posts, and the public timeline.

Each returns post ids newest first for one page; hydrating them into statuses is the caller's one
further step. Hidden authors (blocks either way, mutes) are dropped for a signed-in viewer.
"""

from django.db.models import Q, QuerySet

from weituan.microblog.models import Post, PostKind, PostTopic, Topic, Visibility
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.relations import hidden_author_ids, is_blocked_between, is_following
from weituan.microblog.text import topic_key
from weituan.microblog.timelines.home import home_timeline_ids

__all__ = ["home_timeline_ids", "public_timeline_ids", "topic_timeline_ids", "user_timeline_ids"]


def _paged(
    posts: "QuerySet[Post]", *, max_id: int | None, since_id: int | None, min_id: int | None, limit: int
) -> list[int]:
    return id_page(
        posts.values_list("id", flat=True), max_id=max_id, since_id=since_id, min_id=min_id, limit=limit
    )


def user_timeline_ids(
    author_id: int,
    *,
    viewer_id: int | None,
    exclude_reblogs: bool = False,
    only_media: bool = False,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """An author's posts and reposts (never comments), as `viewer_id` may see them.

    Followers-only posts show to the author and their followers; nothing shows across a block. A repost
    without a comment of its own forwards nothing but others' posts, so it is left out when the author
    of the original or of the post forwarded is hidden from the viewer (blocks either way, mutes), as
    Mastodon leaves out boosts of such accounts; a quote stays, without the post it quotes.
    """
    if viewer_id is not None and viewer_id != author_id and is_blocked_between(viewer_id, author_id):
        return []
    kinds = [PostKind.ORIGINAL] if exclude_reblogs else [PostKind.ORIGINAL, PostKind.REPOST]
    posts = Post.objects.filter(author_id=author_id, kind__in=kinds, deleted_at__isnull=True)
    if viewer_id != author_id and not (viewer_id is not None and is_following(viewer_id, author_id)):
        posts = posts.exclude(visibility=Visibility.PRIVATE)
    if viewer_id is not None and not exclude_reblogs:
        hidden = hidden_author_ids(viewer_id) - {author_id}
        if hidden:
            plain = Q(kind=PostKind.REPOST, comment="")
            posts = posts.exclude(plain & (Q(root__author_id__in=hidden) | Q(parent__author_id__in=hidden)))
    if only_media:
        posts = posts.filter(media__isnull=False).distinct()
    return _paged(posts, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def _visible_to_public(posts: "QuerySet[Post]", viewer_id: int | None) -> "QuerySet[Post]":
    posts = posts.filter(visibility=Visibility.PUBLIC, deleted_at__isnull=True)
    if viewer_id is not None:
        hidden = hidden_author_ids(viewer_id)
        if hidden:
            posts = posts.exclude(author_id__in=hidden).exclude(root__author_id__in=hidden)
    return posts


def public_timeline_ids(
    *,
    viewer_id: int | None,
    only_media: bool = False,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Every public original post, and every repost that says something (a quote), newest first.

    Plain reposts stay out, as Mastodon keeps boosts out of its public timeline.
    """
    posts = Post.objects.filter(Q(kind=PostKind.ORIGINAL) | (Q(kind=PostKind.REPOST) & ~Q(comment="")))
    posts = _visible_to_public(posts, viewer_id)
    if only_media:
        posts = posts.filter(media__isnull=False).distinct()
    return _paged(posts, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def topic_timeline_ids(
    name: str,
    *,
    viewer_id: int | None,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Public posts using the topic `name` (`#话题#` or `#tag`, any case), newest first."""
    key = topic_key(name.strip().strip("#"))[:100]
    topic_id = Topic.objects.filter(name=key).values_list("id", flat=True).first()
    if topic_id is None:
        return []
    uses = PostTopic.objects.filter(topic_id=topic_id)
    if max_id is not None:
        uses = uses.filter(post_id__lt=max_id)
    posts = Post.objects.filter(id__in=uses.values("post_id")).exclude(kind=PostKind.COMMENT)
    posts = _visible_to_public(posts, viewer_id)
    return _paged(posts, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
