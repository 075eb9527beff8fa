"""What every kind of post shares when written: length rules, mentions, topics, media and the target checks.

These run inside the transaction of the write that calls them, so a refusal anywhere rolls back the whole
write and nothing is left half-done.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from weituan.accounts.queries import users_by_usernames
from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.microblog.models import (
    MediaAttachment,
    Mention,
    NotificationKind,
    Post,
    PostTopic,
    Topic,
    Visibility,
)
from weituan.microblog.queries.relations import is_blocked_with_any, is_following
from weituan.microblog.services.notifications import notification_create
from weituan.microblog.stats import topic_use_release, topic_uses_count
from weituan.microblog.text import extract_mentions, extract_topics, topic_key, weighted_length

MAX_MEDIA_PER_POST = 9  # as on Weibo


def length_check(text: str, *, allow_empty: bool = False) -> int:
    """The weighted length of `text`, or ValidationFailed ("empty_post" / "post_too_long")."""
    limit = settings.POST_MAX_WEIGHTED_LENGTH
    length = weighted_length(text)
    if not text.strip() and not allow_empty:
        raise ValidationFailed("The post is empty", code="empty_post", length=0, limit=limit)
    if length > limit:
        raise ValidationFailed(
            f"The post is {length} long (CJK counts 2, a link 23); the limit is {limit}",
            code="post_too_long",
            length=length,
            limit=limit,
        )
    return length


_VISIBILITIES = frozenset(Visibility.values)  # looked up on every post; `values` is built on each read


def visibility_check(visibility: str) -> str:
    if visibility not in _VISIBILITIES:
        raise ValidationFailed(
            f"visibility must be one of {', '.join(Visibility.values)}", code="invalid_visibility"
        )
    return visibility


def target_for_write(actor: Any, post_id: int) -> Post:
    """The post `actor` wants to repost, comment on or like, checked: it exists, is live, is visible to
    them, and no block stands between them and its author, or the author of its tree's original.

    A repost shows the original and a comment hangs under it, so one made by someone else does not
    carry a blocked person past the original's author (Weibo hides it both ways): reposting, liking or
    commenting on it is refused as it would be on the original itself. The post comes with its
    `author` and its `root` loaded."""
    post = Post.objects.select_related("author", "root").filter(id=post_id).first()
    if post is None:
        raise NotFound("Record not found")
    if post.deleted_at is not None:
        raise NotFound("The post was deleted", code="post_deleted")
    authors = {post.author_id, post.root.author_id if post.root is not None else post.author_id}
    if is_blocked_with_any(actor.pk, authors - {actor.pk}):
        raise PermissionDenied("You cannot interact with this account's posts", code="blocked")
    if (
        post.author_id != actor.pk
        and post.visibility == Visibility.PRIVATE
        and not is_following(actor.pk, post.author_id)
    ):
        raise NotFound("Record not found")
    return post


def media_attach(*, post: Post, owner_id: int, media_ids: Sequence[int]) -> None:
    """Attach the owner's uploads that no post carries or carried to `post`, in the order given.

    A conditional UPDATE claims the uploads, so two posts racing for one upload cannot both get it.
    """
    wanted = list(dict.fromkeys(int(media_id) for media_id in media_ids))
    if not wanted:
        return
    if len(wanted) > MAX_MEDIA_PER_POST:
        raise ValidationFailed(f"A post can carry at most {MAX_MEDIA_PER_POST} images", code="too_many_media")
    # An upload an edit took off a post stays that post's (its earlier versions show it).
    free = MediaAttachment.objects.filter(
        id__in=wanted, owner_id=owner_id, post__isnull=True, dropped_from__isnull=True
    )
    claimed = free.update(
        post=post,
        position=Case(
            *[When(id=media_id, then=Value(index)) for index, media_id in enumerate(wanted)],
            output_field=IntegerField(),
        ),
    )
    if claimed != len(wanted):
        raise ValidationFailed(
            "Some media ids are unknown, not yours, or already attached to a post", code="invalid_media"
        )


def mentions_record(
    *,
    post: Post,
    actor_id: int,
    text: str,
    extra_user_ids: Iterable[int] = (),
    already_notified: Iterable[int] = (),
) -> list[int]:
    """Store the mentions in `text` (plus `extra_user_ids`) and notify each mentioned user.

    Unknown names are ignored; users who blocked the author are not notified, nor those in
    `already_notified` (told of this post another way). Returns the mentioned ids.
    """
    found = users_by_usernames(extract_mentions(text))
    user_ids = list(dict.fromkeys([*(user.pk for user in found.values()), *extra_user_ids]))
    if not user_ids:
        return []
    Mention.objects.bulk_create([Mention(post=post, user_id=user_id) for user_id in user_ids])
    skipped = set(already_notified)
    for user_id in user_ids:
        if user_id in skipped:
            continue
        notification_create(
            recipient_id=user_id, actor_id=actor_id, kind=NotificationKind.MENTION, post_id=post.id
        )
    return user_ids


def topic_get_or_create(key: str, display: str) -> Topic:
    """The topic named `key` (a normalised key), created with `display` when new."""
    topic = Topic.objects.filter(name=key).first()
    if topic is not None:
        return topic
    try:
        with transaction.atomic():
            return Topic.objects.create(name=key, display=display)
    except IntegrityError:
        # Another post created the topic between our read and our insert.
        return Topic.objects.get(name=key)


def topics_record(*, post: Post, text: str) -> list[int]:
    """Upsert the topics in `text`, link them to `post` and count the use. Returns the topic ids.

    Counters are bumped in name order so concurrent posts lock counter rows in one order.
    """
    names = {topic_key(name)[:100]: name[:100] for name in extract_topics(text)}
    if not names:
        return []
    topics = [topic_get_or_create(key, names[key]) for key in sorted(names)]
    now = timezone.now()
    PostTopic.objects.bulk_create(
        [PostTopic(post=post, topic=topic, author_id=post.author_id, created_at=now) for topic in topics]
    )
    topic_uses_count(topic_ids=[topic.id for topic in topics], moment=now)
    return [topic.id for topic in topics]


def topics_release(*, post_id: int) -> None:
    """Take a deleted post's uses off its topics' counters (links are kept for history)."""
    # In the order a post's write takes its topics' counters (by name), so the two never wait on each other.
    links = PostTopic.objects.filter(post_id=post_id).order_by("topic__name", "topic_id")
    topic_ids = list(links.values_list("topic_id", flat=True))
    for topic_id in topic_ids:
        topic_use_release(topic_id=topic_id)
