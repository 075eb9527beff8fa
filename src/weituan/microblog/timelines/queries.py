"""Timeline reads: home (from the store), an author's posts, a topic's posts, and the public timeline.

Each returns post ids newest first for one page; hydrating them into statuses is the caller's one
further step. Hidden authors (blocks either way, mutes) are dropped for a signed-in viewer.
"""

from collections.abc import Collection, Sequence
from typing import Any

from django.db.models import Q, QuerySet

from weituan.microblog.models import Post, PostKind, PostTopic, Topic, Visibility
from weituan.microblog.queries.paging import id_page
from weituan.microblog.queries.relations import hidden_author_ids, is_blocked_between, is_following
from weituan.microblog.text import topic_key
from weituan.microblog.timelines.home import home_timeline_ids, home_timeline_ids_in, read_context

__all__ = [
    "home_timeline_ids",
    "home_timeline_ids_in",
    "public_timeline_ids",
    "read_context",
    "topic_timeline_ids",
    "user_timeline_ids",
]

# Mastodon reads at most this many topics from each of a tag timeline's any[], all[] and none[].
TOPICS_PER_MODE = 4


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
    tagged: str | None = None,
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
    `exclude_reblogs` leaves out plain reposts; a quote (a repost with a comment) says something of its
    own and stays, as Mastodon keeps quotes among an account's statuses. `tagged` keeps the posts using
    that topic (`#话题#` or `#tag`, any case); a plain repost uses none of its own.
    """
    if viewer_id is not None and viewer_id != author_id and is_blocked_between(viewer_id, author_id):
        return []
    kinds = [PostKind.ORIGINAL, PostKind.REPOST]
    posts = Post.objects.filter(author_id=author_id, kind__in=kinds, deleted_at__isnull=True)
    if exclude_reblogs:
        posts = posts.exclude(kind=PostKind.REPOST, comment="")
    if viewer_id != author_id and not (viewer_id is not None and is_following(viewer_id, author_id)):
        posts = posts.exclude(visibility=Visibility.PRIVATE)
    if viewer_id is not None and not exclude_reblogs:
        hidden = hidden_author_ids(viewer_id) - {author_id}
        if hidden:
            plain = Q(kind=PostKind.REPOST, comment="")
            posts = posts.exclude(plain & (Q(root__author_id__in=hidden) | Q(parent__author_id__in=hidden)))
    if only_media:
        posts = posts.filter(media__isnull=False).distinct()
    if tagged:
        (topic_id,) = _topic_ids([tagged])
        if topic_id is None:
            return []
        posts = posts.filter(id__in=_topic_uses([topic_id], max_id))
    return _paged(posts, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def _topic_ids(names: Sequence[str]) -> list[int | None]:
    """The id of each topic named (`#话题#`, `#tag` or bare, any case), None for one never used; one query."""
    keys = [topic_key(name.strip().strip("#"))[:100] for name in names]
    found = dict(Topic.objects.filter(name__in=set(keys)).values_list("name", "id"))
    return [found.get(key) for key in keys]


def _topic_uses(topic_ids: Sequence[int], max_id: int | None) -> "QuerySet[PostTopic, Any]":
    """The ids of the posts using any of `topic_ids` (below `max_id`), as a subquery."""
    uses = PostTopic.objects.filter(topic_id__in=topic_ids)
    if max_id is not None:
        uses = uses.filter(post_id__lt=max_id)
    return uses.values("post_id")


def _visible_to_public(
    posts: "QuerySet[Post]", viewer_id: int | None, hidden: Collection[int] | None
) -> "QuerySet[Post]":
    posts = posts.filter(visibility=Visibility.PUBLIC, deleted_at__isnull=True)
    if viewer_id is not None:
        if hidden is None:
            hidden = hidden_author_ids(viewer_id)
        if hidden:
            posts = posts.exclude(author_id__in=hidden).exclude(root__author_id__in=hidden)
    return posts


def public_timeline_ids(
    *,
    viewer_id: int | None,
    hidden: Collection[int] | None = None,
    only_media: bool = False,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Every public original post, and every repost that says something (a quote), newest first.

    Plain reposts stay out, as Mastodon keeps boosts out of its public timeline. `hidden`, when given,
    is the accounts hidden from the viewer, read already (else read here).
    """
    posts = Post.objects.filter(Q(kind=PostKind.ORIGINAL) | (Q(kind=PostKind.REPOST) & ~Q(comment="")))
    posts = _visible_to_public(posts, viewer_id, hidden)
    if only_media:
        posts = posts.filter(media__isnull=False).distinct()
    return _paged(posts, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)


def topic_timeline_ids(
    name: str,
    *,
    viewer_id: int | None,
    hidden: Collection[int] | None = None,
    any_of: Sequence[str] = (),
    all_of: Sequence[str] = (),
    none_of: Sequence[str] = (),
    only_media: bool = False,
    max_id: int | None = None,
    since_id: int | None = None,
    min_id: int | None = None,
    limit: int = 20,
) -> list[int]:
    """Public posts using the topic `name` (`#话题#` or `#tag`, any case), newest first.

    As Mastodon's tag timeline: posts using any of `any_of` come in too; a post must also use every
    topic of `all_of`, and none of `none_of` (the first TOPICS_PER_MODE of each are read). A topic
    nobody ever used matches no post, so naming one in `all_of` leaves nothing, and a `name` never used
    answers nothing whatever the others say (Mastodon answers nothing for a tag it does not know).
    `hidden` is as for `public_timeline_ids`.
    """
    any_of, all_of, none_of = (list(names[:TOPICS_PER_MODE]) for names in (any_of, all_of, none_of))
    found = iter(_topic_ids([name, *any_of, *all_of, *none_of]))
    main = next(found)
    anys, alls, nones = ([next(found) for _ in names] for names in (any_of, all_of, none_of))
    if main is None or None in alls:
        return []
    posts = Post.objects.filter(id__in=_topic_uses([main, *(i for i in anys if i is not None)], max_id))
    for topic_id in (i for i in alls if i is not None):
        posts = posts.filter(id__in=_topic_uses([topic_id], max_id))
    excluded = [topic_id for topic_id in nones if topic_id is not None]
    if excluded:
        posts = posts.exclude(id__in=_topic_uses(excluded, max_id))
    posts = _visible_to_public(posts.exclude(kind=PostKind.COMMENT), viewer_id, hidden)
    if only_media:
        posts = posts.filter(media__isnull=False).distinct()
    return _paged(posts, max_id=max_id, since_id=since_id, min_id=min_id, limit=limit)
