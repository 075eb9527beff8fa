"""Comments (one level of replies) and likes: counters, notifications and refusals."""

import pytest

from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.microblog.models import Block, Like, Mention, Notification, Post
from weituan.microblog.queries.posts import comments_page, post_context
from weituan.microblog.services.interactions import comment_create, comment_delete, like_add, like_remove
from weituan.microblog.services.posts import post_create, post_delete, repost_create


@pytest.fixture
def original(merchant):
    return post_create(author=merchant, text="新店开业")


def comments_count(post_id):
    return Post.objects.get(id=post_id).comments_count


def test_a_comment_hangs_under_its_post_and_notifies_its_author(shopper, merchant, original):
    comment = comment_create(author=shopper, post_id=original.id, text="恭喜")
    assert (comment.kind, comment.parent_id, comment.root_id, comment.reply_to_id) == (
        "comment",
        original.id,
        original.id,
        None,
    )
    assert comments_count(original.id) == 1
    assert list(Notification.objects.values_list("recipient_id", "kind", "post_id")) == [
        (merchant.pk, "comment", comment.id)
    ]


def test_a_comment_on_a_repost_points_at_the_tree_root(shopper, outsider, original):
    repost = repost_create(reposter=shopper, post_id=original.id, comment="转")
    comment = comment_create(author=outsider, post_id=repost.id, text="好")
    assert (comment.parent_id, comment.root_id) == (repost.id, original.id)
    assert comments_count(repost.id) == 1
    assert comments_count(original.id) == 0


def test_replies_stay_one_level_deep_and_mention_the_replied_user(shopper, merchant, outsider, original):
    top = comment_create(author=shopper, post_id=original.id, text="几点开门")
    reply = comment_create(author=merchant, post_id=original.id, text="十点", reply_to_comment_id=top.id)
    reply_to_reply = comment_create(author=outsider, post_id=reply.id, text="谢谢")  # Mastodon in_reply_to
    assert reply.reply_to_id == top.id
    assert reply_to_reply.reply_to_id == top.id
    assert reply_to_reply.parent_id == original.id
    assert reply_to_reply.text == "回复@meituan_shop: 谢谢"
    assert list(Mention.objects.filter(post=reply_to_reply).values_list("user_id", flat=True)) == [
        merchant.pk
    ]
    assert comments_count(original.id) == 3
    assert comments_count(top.id) == 2
    # The post's author hears of every comment, the top comment's author of replies under it; the replied
    # user gets one notification, not two.
    assert sorted(
        Notification.objects.filter(post=reply_to_reply).values_list("recipient_id", "kind")
    ) == sorted([(merchant.pk, "comment"), (shopper.pk, "comment")])


def test_a_reply_must_belong_to_the_post(shopper, merchant, original):
    other = post_create(author=merchant, text="另一条")
    top = comment_create(author=shopper, post_id=other.id, text="x")
    with pytest.raises(ValidationFailed) as wrong:
        comment_create(author=shopper, post_id=original.id, text="y", reply_to_comment_id=top.id)
    assert wrong.value.code == "invalid_reply"
    assert comments_count(original.id) == 0


def test_commenting_is_refused_on_deleted_posts_and_between_blocked_users(shopper, merchant, original):
    with pytest.raises(ValidationFailed) as empty:
        comment_create(author=shopper, post_id=original.id, text=" ")
    assert empty.value.code == "empty_post"
    Block.objects.create(blocker=merchant, blocked=shopper)
    with pytest.raises(PermissionDenied) as blocked:
        comment_create(author=shopper, post_id=original.id, text="hi")
    assert blocked.value.code == "blocked"
    post_delete(actor=merchant, post_id=original.id)
    with pytest.raises(NotFound) as gone:
        comment_create(author=merchant, post_id=original.id, text="hi")
    assert gone.value.code == "post_deleted"
    assert Post.objects.filter(kind="comment").count() == 0


def test_comments_are_deleted_by_their_author_or_the_posts_author(shopper, merchant, outsider, original):
    first = comment_create(author=shopper, post_id=original.id, text="一")
    second = comment_create(author=outsider, post_id=original.id, text="二")
    reply = comment_create(author=outsider, post_id=original.id, text="三", reply_to_comment_id=first.id)
    with pytest.raises(PermissionDenied):
        comment_delete(actor=outsider, comment_id=first.id)
    comment_delete(actor=outsider, comment_id=reply.id)
    assert (comments_count(original.id), comments_count(first.id)) == (2, 0)
    comment_delete(actor=merchant, comment_id=second.id)
    assert comments_count(original.id) == 1


def test_comments_page_and_context(shopper, merchant, outsider, original):
    first = comment_create(author=shopper, post_id=original.id, text="一")
    second = comment_create(author=outsider, post_id=original.id, text="二")
    reply = comment_create(author=merchant, post_id=original.id, text="三", reply_to_comment_id=first.id)
    assert [view.id for view in comments_page(None, original.id)] == [second.id, first.id]
    assert [view.id for view in comments_page(None, original.id, replies_of=first.id)] == [reply.id]
    assert [view.id for view in comments_page(None, original.id, max_id=second.id)] == [first.id]
    Block.objects.create(blocker=shopper, blocked=outsider)
    assert [view.id for view in comments_page(shopper, original.id)] == [first.id]
    context = post_context(merchant, original.id)
    assert ([v.id for v in context.ancestors], [v.id for v in context.descendants]) == (
        [],
        [first.id, second.id, reply.id],
    )
    reply_context = post_context(merchant, reply.id)
    assert [v.id for v in reply_context.ancestors] == [original.id, first.id]


def test_likes_are_idempotent_and_counted_exactly(shopper, merchant, outsider, original):
    assert like_add(user=shopper, post_id=original.id) is True
    assert like_add(user=shopper, post_id=original.id) is False
    assert like_add(user=outsider, post_id=original.id) is True
    assert Post.objects.get(id=original.id).likes_count == 2
    assert like_remove(user=shopper, post_id=original.id) is True
    assert like_remove(user=shopper, post_id=original.id) is False
    assert Post.objects.get(id=original.id).likes_count == 1
    # Liking again does not notify a second time.
    like_add(user=shopper, post_id=original.id)
    assert Notification.objects.filter(kind="like", actor=shopper).count() == 1
    assert Like.objects.filter(post=original).count() == 2


def test_likes_are_refused_between_blocked_users_and_on_deleted_posts(shopper, merchant, original):
    Block.objects.create(blocker=shopper, blocked=merchant)
    with pytest.raises(PermissionDenied):
        like_add(user=shopper, post_id=original.id)
    Block.objects.all().delete()
    post_delete(actor=merchant, post_id=original.id)
    with pytest.raises(NotFound) as gone:
        like_add(user=shopper, post_id=original.id)
    assert gone.value.code == "post_deleted"
    assert Post.objects.get(id=original.id).likes_count == 0
    with pytest.raises(NotFound):
        like_remove(user=shopper, post_id=999)


def test_liking_ones_own_post_does_not_notify(merchant, original):
    like_add(user=merchant, post_id=original.id)
    assert Notification.objects.count() == 0
    assert Post.objects.get(id=original.id).likes_count == 1
