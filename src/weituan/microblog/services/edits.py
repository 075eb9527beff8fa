"""Editing a post after it was published (Weibo's 编辑, Mastodon's status edits).

An edit changes what the author wrote: an original's or a comment's text, a repost's comment (its chain
is rebuilt around it); and the images of an original or a comment: some taken off, new uploads put
on, their order and their alt texts (`edit_media`). Everything drawn from the words follows: new
mentions are recorded and told, mentions taken out are dropped; topics taken out release their use,
new ones are counted; the search index and the short links of the URLs are made again. Each version is
kept (`PostEdit`, with the images it carried), the published one first, and the post carries
`edited_at`. Those who reposted the post without a comment are told it changed, as Mastodon tells its
boosters, and the streams showing the post get it again (`status.update`). Visibility and the deal a
post carries stay as published.
"""

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from weituan.accounts.queries import users_by_usernames
from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.core.stream_events import stream_publish
from weituan.microblog.models import (
    Mention,
    NotificationKind,
    Post,
    PostEdit,
    PostKind,
    PostTopic,
)
from weituan.microblog.search.facade import post_index_new, post_unindex
from weituan.microblog.services.edit_media import (
    MediaAttributes,
    images_edit_apply,
    images_edit_plan,
    media_versioned,
)
from weituan.microblog.services.notifications import notification_create
from weituan.microblog.services.post_content import length_check, mentions_record, topic_get_or_create
from weituan.microblog.services.post_links import post_links_make
from weituan.microblog.services.posts import chain_fitted
from weituan.microblog.stats import topic_use_release, topic_uses_count
from weituan.microblog.text import extract_mentions, extract_topics, topic_key


def post_edit(
    *,
    editor: Any,
    post_id: int,
    text: str,
    media_ids: Sequence[int] | None = None,
    media_attributes: Sequence[MediaAttributes] = (),
) -> Post:
    """Replace the words of `editor`'s post `post_id` with `text`, and its images with `media_ids` (in
    that order; None keeps them) described as `media_attributes` asks; the post as it now is.

    An edit that changes nothing a reader sees writes nothing (no version is kept), as Mastodon does.
    Refused, with nothing written: someone else's post (403 `not_author`), a deleted one (404), a repost
    without a comment (422 `not_editable`: it says nothing of its own), text the length rules refuse
    (as when posting; an original or a comment left with images may go without words), and images
    `images_edit_plan` refuses."""
    text = text.strip()
    with transaction.atomic():
        post = Post.objects.select_for_update().filter(id=post_id).first()
        if post is None:
            raise NotFound("Record not found")
        if post.deleted_at is not None:
            raise NotFound("The post was deleted", code="post_deleted")
        if post.author_id != editor.pk:
            raise PermissionDenied("Only the author can edit this post", code="not_author")
        if post.kind == PostKind.REPOST and not post.comment:
            raise ValidationFailed("A repost without a comment has nothing to edit", code="not_editable")
        images = images_edit_plan(
            post=post, editor_id=editor.pk, media_ids=media_ids, attributes=media_attributes
        )
        before_text, before_comment, new_chain = post.text, post.comment, post.chain
        if post.kind == PostKind.REPOST:
            length_check(text)
            # The chain is fitted to the limit again around the new comment (the farthest hops dropped
            # first, as when reposting).
            if text != before_comment:
                new_chain, new_text = chain_fitted(text, post.chain)
            else:
                new_text = before_text
            new_comment = text
        else:
            length_check(text, allow_empty=bool(images.after))
            new_text, new_comment = text, before_comment
        words_changed = new_text != before_text or new_comment != before_comment
        if not words_changed and not images.changed:
            return post
        now = timezone.now()
        if not PostEdit.objects.filter(post_id=post.id).exists():
            PostEdit.objects.create(
                post=post,
                text=before_text,
                comment=before_comment,
                media=images.before,
                created_at=post.created_at,
            )
        if images.changed:
            images_edit_apply(images)
        post.text, post.comment, post.chain, post.edited_at = new_text, new_comment, new_chain, now
        Post.objects.filter(id=post.id).update(
            text=post.text, comment=post.comment, chain=post.chain, edited_at=now
        )
        PostEdit.objects.create(
            post=post,
            text=post.text,
            comment=post.comment,
            media=media_versioned(images.after),
            created_at=now,
        )
        if words_changed:
            _words_follow(post)
        _reposters_tell(post)
        if post.kind != PostKind.COMMENT:  # comments are on no timeline, so on no stream
            stream_publish({"t": "edit", "id": post.id, "a": post.author_id})
    return post


def _words_follow(post: Post) -> None:
    """What is drawn from the post's words, made again from its new ones."""
    words = post.comment if post.kind == PostKind.REPOST else post.text
    _mentions_follow(post, words)
    if post.kind != PostKind.COMMENT:
        _topics_follow(post, words)
        post_unindex(post_id=post.id)
        post_index_new(post=post)
    post_links_make(post)


def _mentions_follow(post: Post, words: str) -> None:
    """The post's mentions as its new words make them: the ones taken out dropped, new ones recorded and
    told (someone mentioned before is not told again)."""
    kept = set(Mention.objects.filter(post_id=post.id).values_list("user_id", flat=True))
    named = {user.pk for user in users_by_usernames(extract_mentions(words)).values()}
    if kept - named:
        Mention.objects.filter(post_id=post.id, user_id__in=kept - named).delete()
    if named - kept:
        mentions_record(post=post, actor_id=post.author_id, text="", extra_user_ids=sorted(named - kept))


def _topics_follow(post: Post, words: str) -> None:
    """The post's topics as its new words make them: a topic taken out releases its use and its link,
    a new one is counted and linked (in name order, as every post write takes topics' counters)."""
    wanted = {topic_key(name)[:100]: name[:100] for name in extract_topics(words)}
    links = PostTopic.objects.filter(post_id=post.id).select_related("topic")
    had = {link.topic.name: link for link in links}
    for key in sorted(set(had) - set(wanted)):
        topic_use_release(topic_id=had[key].topic_id)
        PostTopic.objects.filter(id=had[key].id).delete()
    added = [topic_get_or_create(key, wanted[key]) for key in sorted(set(wanted) - set(had))]
    if added:
        now = timezone.now()
        PostTopic.objects.bulk_create(
            [PostTopic(post=post, topic=topic, author_id=post.author_id, created_at=now) for topic in added]
        )
        topic_uses_count(topic_ids=[topic.id for topic in added], moment=now)


def _reposters_tell(post: Post) -> None:
    """Tell each account whose live plain repost forwards the post that its words changed."""
    reposters = (
        Post.objects.filter(parent_id=post.id, kind=PostKind.REPOST, comment="", deleted_at__isnull=True)
        .exclude(author_id=post.author_id)
        .values_list("author_id", flat=True)
        .distinct()
    )
    for reposter_id in sorted(set(reposters)):
        notification_create(
            recipient_id=reposter_id, actor_id=post.author_id, kind=NotificationKind.UPDATE, post_id=post.id
        )
