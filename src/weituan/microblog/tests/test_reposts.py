"""Reposts as Weibo forwards: parent and root pointers, depth, the `//@` chain, counters and the tree."""

import pytest

from weituan.core.errors import NotFound, PermissionDenied, ValidationFailed
from weituan.core.testing import make_user
from weituan.microblog.models import AccountStats, Block, Follow, Notification, Post, PostTopic, Topic
from weituan.microblog.queries.reposts import repost_chain, repost_tree
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create, post_delete, repost_create, repost_undo
from weituan.microblog.stats import topic_counts


def counts(post_id):
    post = Post.objects.get(id=post_id)
    return post.reposts_count, post.comments_count, post.likes_count


@pytest.fixture
def original(merchant):
    return post_create(author=merchant, text="限时团购：火锅套餐 99 元")


def test_a_repost_of_an_original_points_at_it(shopper, merchant, original):
    repost = repost_create(reposter=shopper, post_id=original.id, comment="冲")
    assert (repost.kind, repost.parent_id, repost.root_id, repost.depth) == (
        "repost",
        original.id,
        original.id,
        1,
    )
    assert (repost.text, repost.comment, repost.chain) == ("冲", "冲", [])
    assert counts(original.id) == (1, 0, 0)
    assert AccountStats.objects.get(user=shopper).posts_count == 1
    assert list(Notification.objects.values_list("recipient_id", "actor_id", "kind", "post_id")) == [
        (merchant.pk, shopper.pk, "repost", repost.id)
    ]


def test_a_reposts_comment_counts_its_topics_and_its_delete_takes_them_back(shopper, merchant, original):
    post_create(author=merchant, text="#火锅# 开团")
    repost = repost_create(reposter=shopper, post_id=original.id, comment="冲 #火锅# #Deal")
    topics = dict(Topic.objects.values_list("name", "id"))
    assert set(topics) == {"火锅", "deal"}
    counted = topic_counts(list(topics.values()))
    assert {name: counted[topic_id].posts for name, topic_id in topics.items()} == {"火锅": 2, "deal": 1}
    linked = PostTopic.objects.get(post=repost, topic_id=topics["deal"])
    assert counted[topics["deal"]].last_used_at == linked.created_at
    post_delete(actor=shopper, post_id=repost.id)
    counted = topic_counts(list(topics.values()))
    assert {name: counted[topic_id].posts for name, topic_id in topics.items()} == {"火锅": 1, "deal": 0}


def test_a_plain_repost_of_an_original_reads_zhuanfa_weibo(shopper, original):
    assert repost_create(reposter=shopper, post_id=original.id).text == "转发微博"


def test_a_repost_of_a_repost_carries_the_chain_and_deepens_the_tree(shopper, merchant, outsider, original):
    first = repost_create(reposter=shopper, post_id=original.id, comment="好价")
    second = repost_create(reposter=outsider, post_id=first.id, comment="同去")
    dave = make_user("dave")
    third = repost_create(reposter=dave, post_id=second.id)

    assert (second.parent_id, second.root_id, second.depth) == (first.id, original.id, 2)
    assert second.text == "同去//@alice: 好价"
    assert (third.parent_id, third.root_id, third.depth) == (second.id, original.id, 3)
    assert third.text == "//@charlie: 同去//@alice: 好价"
    assert third.comment == ""
    assert [hop["username"] for hop in third.chain] == ["charlie", "alice"]
    # The root counts the whole tree; a repost counts its direct reposts.
    assert counts(original.id)[0] == 3
    assert counts(first.id)[0] == 1
    assert counts(second.id)[0] == 1
    assert counts(third.id)[0] == 0
    # Each parent's author is told, and the original's author of every quote (a repost with words of its
    # own shows the original), however deep.
    assert set(Notification.objects.filter(kind="repost").values_list("recipient_id", "post_id")) == {
        (merchant.pk, first.id),
        (shopper.pk, second.id),
        (merchant.pk, second.id),
        (outsider.pk, third.id),
    }


def test_the_chain_drops_its_farthest_hops_to_fit_the_limit(shopper, outsider, original, settings):
    settings.POST_MAX_WEIGHTED_LENGTH = 30
    first = repost_create(reposter=shopper, post_id=original.id, comment="a" * 20)
    second = repost_create(reposter=outsider, post_id=first.id, comment="b" * 5)
    # "bbbbb//@alice: " + 20 a's = 40 > 30: alice's hop is dropped from the text, not from the tree.
    assert second.text == "bbbbb"
    assert second.chain == []
    assert [hop.username for hop in repost_chain(second.id)] == ["charlie", "alice", "meituan_shop"]
    with pytest.raises(ValidationFailed) as too_long:
        repost_create(reposter=outsider, post_id=first.id, comment="c" * 31)
    assert too_long.value.code == "post_too_long"


def test_reposting_a_deleted_post_or_a_comment_is_refused_and_changes_nothing(shopper, merchant, original):
    comment = comment_create(author=shopper, post_id=original.id, text="想买")
    with pytest.raises(ValidationFailed) as on_comment:
        repost_create(reposter=merchant, post_id=comment.id)
    assert on_comment.value.code == "cannot_repost_comment"
    first = repost_create(reposter=shopper, post_id=original.id)
    post_delete(actor=merchant, post_id=original.id)
    with pytest.raises(NotFound) as gone:
        repost_create(reposter=shopper, post_id=original.id)
    assert gone.value.code == "post_deleted"
    # A live repost of a deleted original cannot be forwarded either.
    outsider = make_user("eve")
    with pytest.raises(NotFound) as root_gone:
        repost_create(reposter=outsider, post_id=first.id)
    assert root_gone.value.code == "post_deleted"
    with pytest.raises(NotFound) as missing:
        repost_create(reposter=shopper, post_id=42)
    assert missing.value.code == "not_found"
    assert Post.objects.filter(kind="repost").count() == 1
    assert counts(original.id)[0] == 1


def test_a_blocked_user_cannot_repost_either_way(shopper, merchant, original):
    Block.objects.create(blocker=merchant, blocked=shopper)
    with pytest.raises(PermissionDenied) as refused:
        repost_create(reposter=shopper, post_id=original.id, comment="hi")
    assert refused.value.code == "blocked"
    mine = post_create(author=shopper, text="mine")
    with pytest.raises(PermissionDenied):
        repost_create(reposter=merchant, post_id=mine.id)
    assert Post.objects.filter(kind="repost").count() == 0
    assert counts(original.id)[0] == 0
    assert Notification.objects.filter(kind="repost").count() == 0


def test_a_followers_only_post_cannot_be_reposted_by_others(shopper, merchant):
    private = post_create(author=merchant, text="会员专享", visibility="private")
    with pytest.raises(NotFound):
        repost_create(reposter=shopper, post_id=private.id)
    Follow.objects.create(follower=shopper, followee=merchant)
    with pytest.raises(PermissionDenied) as refused:
        repost_create(reposter=shopper, post_id=private.id)
    assert refused.value.code == "not_repostable"


def test_deleting_reposts_takes_their_counts_back(shopper, outsider, original):
    first = repost_create(reposter=shopper, post_id=original.id, comment="1")
    second = repost_create(reposter=outsider, post_id=first.id, comment="2")
    post_delete(actor=outsider, post_id=second.id)
    assert counts(original.id)[0] == 1
    assert counts(first.id)[0] == 0
    post_delete(actor=shopper, post_id=first.id)
    assert counts(original.id)[0] == 0
    assert AccountStats.objects.get(user=shopper).posts_count == 0


def test_plain_reblog_is_reused_and_undone(shopper, original):
    first = repost_create(reposter=shopper, post_id=original.id, reuse_plain=True)
    again = repost_create(reposter=shopper, post_id=original.id, reuse_plain=True)
    assert again.id == first.id
    assert counts(original.id)[0] == 1
    assert repost_undo(reposter=shopper, post_id=original.id) == 1
    assert counts(original.id)[0] == 0
    assert repost_undo(reposter=shopper, post_id=original.id) == 0


def test_the_repost_tree_has_a_node_per_hop(shopper, merchant, outsider, original):
    a = repost_create(reposter=shopper, post_id=original.id, comment="A")
    b = repost_create(reposter=outsider, post_id=a.id, comment="B")
    c = repost_create(reposter=merchant, post_id=original.id, comment="C")
    dave = make_user("dave")
    d = repost_create(reposter=dave, post_id=b.id, comment="D")
    comment_create(author=dave, post_id=original.id, text="comments are not hops")
    post_delete(actor=merchant, post_id=c.id)

    tree = repost_tree(original.id)
    assert [
        (node.id, node.parent_id, node.depth, node.username, node.comment, node.deleted)
        for node in tree.nodes
    ] == [
        (original.id, None, 0, "meituan_shop", "限时团购：火锅套餐 99 元", False),
        (a.id, original.id, 1, "alice", "A", False),
        (b.id, a.id, 2, "charlie", "B", False),
        (c.id, original.id, 1, "meituan_shop", "", True),
        (d.id, b.id, 3, "dave", "D", False),
    ]
    assert (tree.size, tree.max_depth) == (3, 3)

    subtree = repost_tree(a.id)
    assert [node.id for node in subtree.nodes] == [a.id, b.id, d.id]
    assert (subtree.size, subtree.max_depth, subtree.root_id) == (2, 2, original.id)
    assert [hop.post_id for hop in repost_chain(d.id)] == [d.id, b.id, a.id, original.id]


def test_a_repost_reaches_followers_after_commit_and_leaves_when_deleted(
    api_as, shopper, outsider, original, run_on_commit
):
    from weituan.microblog.services.relations import follow_create

    reader = api_as(outsider)
    with run_on_commit():
        follow_create(follower=outsider, followee_id=shopper.pk)
    assert reader.get("/api/v1/timelines/home").json() == []  # reading makes the follower active
    with run_on_commit():
        repost = repost_create(reposter=shopper, post_id=original.id, comment="推荐")
    home = reader.get("/api/v1/timelines/home").json()
    assert [(status["id"], status["quote"]["quoted_status"]["id"]) for status in home] == [
        (str(repost.id), str(original.id))
    ]
    with run_on_commit():
        post_delete(actor=shopper, post_id=repost.id)
    assert reader.get("/api/v1/timelines/home").json() == []
