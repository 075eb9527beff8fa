"""Writing and deleting original posts: length rules, mentions, topics, images, counters."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.core.testing import make_user
from weituan.microblog.models import (
    AccountStats,
    Block,
    MediaAttachment,
    Mention,
    Notification,
    Post,
    PostTopic,
    Topic,
    TopicCount,
)
from weituan.microblog.services.media import media_upload
from weituan.microblog.services.posts import post_create, post_delete
from weituan.microblog.stats import TOPIC_SHARDS, topic_counts


def png(width=32, height=16, color=(200, 10, 10)):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return SimpleUploadedFile("pic.png", buffer.getvalue(), content_type="image/png")


def posts_count(user):
    row = AccountStats.objects.filter(user=user).first()
    return row.posts_count if row else 0


def test_an_original_post_is_stored_and_counted(shopper):
    post = post_create(author=shopper, text="  今天团购了火锅  ")
    post.refresh_from_db()
    assert (post.kind, post.text, post.parent_id, post.root_id, post.depth) == (
        "original",
        "今天团购了火锅",
        None,
        None,
        0,
    )
    assert posts_count(shopper) == 1


def test_empty_and_over_long_posts_are_refused_and_nothing_is_written(shopper, settings):
    settings.POST_MAX_WEIGHTED_LENGTH = 10
    with pytest.raises(ValidationFailed) as empty:
        post_create(author=shopper, text="   ")
    assert empty.value.code == "empty_post"
    with pytest.raises(ValidationFailed) as long:
        post_create(author=shopper, text="微博微博微博")  # 6 CJK = 12
    assert long.value.code == "post_too_long"
    assert "12" in long.value.message
    assert long.value.details["length"] == 12
    assert post_create(author=shopper, text="微博微博微").text == "微博微博微"  # exactly 10
    assert Post.objects.count() == 1
    assert posts_count(shopper) == 1


def test_a_url_counts_23_towards_the_limit(shopper, settings):
    settings.POST_MAX_WEIGHTED_LENGTH = 26
    post_create(author=shopper, text="看 https://example.com/" + "x" * 100)  # 2 + 1 + 23
    with pytest.raises(ValidationFailed):
        post_create(author=shopper, text="看看 https://example.com/a")  # 4 + 1 + 23


def test_mentions_notify_each_mentioned_user_but_not_blocked_ones_or_oneself(shopper, merchant, outsider):
    Block.objects.create(blocker=outsider, blocked=shopper)
    post = post_create(author=shopper, text="@meituan_shop @charlie @alice @nobody 看这个")
    assert set(Mention.objects.filter(post=post).values_list("user_id", flat=True)) == {
        merchant.pk,
        outsider.pk,
        shopper.pk,
    }
    notes = list(Notification.objects.values_list("recipient_id", "actor_id", "kind", "post_id"))
    assert notes == [(merchant.pk, shopper.pk, "mention", post.id)]


def test_topics_are_upserted_and_counted(shopper, merchant):
    first = post_create(author=shopper, text="#双十一# 开抢 #Deal")
    post_create(author=merchant, text="#双十一# 我们也参加 #deal #新品")
    topics = {topic.name: topic for topic in Topic.objects.all()}
    counts = topic_counts([topic.id for topic in topics.values()])
    assert {name: (topic.display, counts[topic.id].posts) for name, topic in topics.items()} == {
        "双十一": ("双十一", 2),
        "deal": ("Deal", 2),
        "新品": ("新品", 1),
    }
    assert PostTopic.objects.filter(post=first).count() == 2
    post_delete(actor=shopper, post_id=first.id)
    counts = topic_counts([topic.id for topic in topics.values()])
    assert {name: counts[topic.id].posts for name, topic in topics.items()} == {
        "双十一": 1,
        "deal": 1,
        "新品": 1,
    }


def test_a_deleted_post_takes_back_no_use_a_topic_does_not_count(shopper):
    # A link written without its use counted (as a bulk load may): the delete leaves the count at zero.
    post = post_create(author=shopper, text="没有话题")
    topic = Topic.objects.create(name="补录", display="补录")
    PostTopic.objects.create(post=post, topic=topic, author=shopper, created_at=post.created_at)
    post_delete(actor=shopper, post_id=post.id)
    assert topic_counts([topic.id])[topic.id].posts == 0
    post_create(author=shopper, text="#补录# 再来")
    assert topic_counts([topic.id])[topic.id].posts == 1


def test_a_topic_taken_back_past_its_uses_shows_none(shopper):
    # Two deletes racing on a topic's last use can each take it back; the count is never shown below zero.
    post = post_create(author=shopper, text="#抢购# 一次")
    topic = Topic.objects.get(name="抢购")
    # Another connection's share of the count (not the one this connection's post went to), taken back twice.
    used = set(TopicCount.objects.filter(topic=topic).values_list("shard", flat=True))
    other = next(shard for shard in range(TOPIC_SHARDS) if shard not in used)
    TopicCount.objects.create(topic=topic, shard=other, posts_count=-2)
    assert topic_counts([topic.id])[topic.id].posts == 0
    post_delete(actor=shopper, post_id=post.id)
    assert topic_counts([topic.id])[topic.id].posts == 0


def test_images_are_attached_in_order_and_only_the_owners(shopper, merchant):
    first, second = media_upload(owner=shopper, upload=png()), media_upload(owner=shopper, upload=png(8, 8))
    theirs = media_upload(owner=merchant, upload=png())
    with pytest.raises(ValidationFailed) as stolen:
        post_create(author=shopper, text="偷图", media_ids=[first.id, theirs.id])
    assert stolen.value.code == "invalid_media"
    assert Post.objects.count() == 0
    assert MediaAttachment.objects.filter(post__isnull=False).count() == 0

    with pytest.raises(ValidationFailed) as unknown:
        post_create(author=shopper, text="x", media_ids=[987654321])
    assert unknown.value.code == "invalid_media"

    post = post_create(author=shopper, text="", media_ids=[second.id, first.id])
    assert list(post.media.order_by("position").values_list("id", flat=True)) == [second.id, first.id]
    with pytest.raises(ValidationFailed) as reused:
        post_create(author=shopper, text="again", media_ids=[first.id])
    assert reused.value.code == "invalid_media"


def test_at_most_nine_images(shopper):
    ids = [media_upload(owner=shopper, upload=png(4, 4)).id for _ in range(10)]
    with pytest.raises(ValidationFailed) as too_many:
        post_create(author=shopper, text="九宫格", media_ids=ids)
    assert too_many.value.code == "too_many_media"
    assert len(post_create(author=shopper, text="九宫格", media_ids=ids[:9]).media.all()) == 9


def test_uploads_are_checked_and_resized(shopper, settings):
    media = media_upload(owner=shopper, upload=png(3000, 1500))
    assert (media.width, media.height) == (2048, 1024)
    with pytest.raises(ValidationFailed) as broken:
        media_upload(owner=shopper, upload=SimpleUploadedFile("x.png", b"not an image"))
    assert broken.value.code == "invalid_image"
    settings.MEDIA_MAX_BYTES = 1024
    with pytest.raises(ValidationFailed) as big:
        media_upload(owner=shopper, upload=SimpleUploadedFile("x.png", b"\x89PNG" + b"0" * 2000))
    assert big.value.code == "image_too_large"
    assert MediaAttachment.objects.count() == 1


def test_only_the_author_deletes_and_counters_go_back(shopper, outsider):
    post = post_create(author=shopper, text="会被删")
    with pytest.raises(PermissionDenied):
        post_delete(actor=outsider, post_id=post.id)
    assert Post.objects.get(id=post.id).deleted_at is None
    post_delete(actor=shopper, post_id=post.id)
    assert Post.objects.get(id=post.id).deleted_at is not None
    assert posts_count(shopper) == 0
    with pytest.raises(NotFound) as again:
        post_delete(actor=shopper, post_id=post.id)
    assert again.value.code == "post_deleted"
    assert posts_count(shopper) == 0
    with pytest.raises(NotFound):
        post_delete(actor=shopper, post_id=12345)


def test_visibility_is_checked(shopper):
    with pytest.raises(ValidationFailed) as bad:
        post_create(author=shopper, text="hi", visibility="secret")
    assert bad.value.code == "invalid_visibility"


def test_deleting_a_post_removes_its_notifications(shopper, merchant):
    post = post_create(author=shopper, text="@meituan_shop 你好")
    assert Notification.objects.filter(recipient=merchant).count() == 1
    post_delete(actor=shopper, post_id=post.id)
    assert Notification.objects.filter(recipient=merchant).count() == 0


def test_chinese_usernames_are_mentioned(shopper):
    zhang = make_user("张三")
    post_create(author=shopper, text="你好@张三")
    assert Notification.objects.get().recipient_id == zhang.pk
