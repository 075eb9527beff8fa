"""Hydrating posts for display: everything loaded in a fixed number of queries, whatever the count."""

from weituan.mastodon.serializers_statuses import statuses_json
from weituan.microblog.queries.posts import posts_hydrate
from weituan.microblog.services.interactions import comment_create, like_add
from weituan.microblog.services.posts import post_create, post_delete, repost_create


def _world(merchant, shopper, count):
    ids = []
    for index in range(count):
        original = post_create(author=merchant, text=f"#团购# 第{index}条 @alice")
        repost = repost_create(reposter=shopper, post_id=original.id, comment=f"转{index}")
        like_add(user=shopper, post_id=original.id)
        ids += [original.id, repost.id]
    return ids


def test_query_count_does_not_grow_with_the_number_of_posts(
    shopper, merchant, outsider, django_assert_num_queries
):
    few = _world(merchant, shopper, 2)
    many = few + _world(merchant, outsider, 8)
    # For a reader, one more: whether a block or mute hides the originals the reposts show.
    with django_assert_num_queries(5):
        small = posts_hydrate(few, shopper)
    with django_assert_num_queries(5):
        large = posts_hydrate(many, shopper)
    with django_assert_num_queries(4):
        posts_hydrate(many, None)
    with django_assert_num_queries(4):  # no repost among them shows another's post
        posts_hydrate(few[0::2], shopper)
    with django_assert_num_queries(0):  # rendering Mastodon statuses reads nothing more
        rendered = statuses_json(large)
    assert [status["id"] for status in rendered] == [str(post_id) for post_id in many]
    assert rendered[1]["quote"]["quoted_status"]["id"] == str(few[0])
    assert [view.id for view in small] == few
    assert len(large) == 20


def test_views_carry_counts_flags_parents_and_topics(shopper, merchant):
    original = post_create(author=merchant, text="#团购# 好货 @alice")
    repost = repost_create(reposter=shopper, post_id=original.id, comment="冲")
    like_add(user=shopper, post_id=original.id)
    comment = comment_create(author=shopper, post_id=original.id, text="好")
    views = {view.id: view for view in posts_hydrate([repost.id, original.id, comment.id], shopper)}
    main = views[original.id]
    # A forward with a comment is a post of its own, not the plain repost Mastodon's `reblogged` means.
    assert (main.liked_by_viewer, main.reposted_by_viewer) == (True, False)
    repost_create(reposter=shopper, post_id=original.id)
    assert posts_hydrate([original.id], shopper)[0].reposted_by_viewer is True
    assert (main.post.reposts_count, main.post.comments_count, main.post.likes_count) == (1, 1, 1)
    assert [user.username for user in main.mentions] == ["alice"]
    assert [topic.name for topic in main.topics] == ["团购"]
    assert main.author_counts.posts == 1
    assert views[repost.id].parent is views[repost.id].root
    assert views[repost.id].root is views[original.id]
    assert views[comment.id].parent is views[original.id]


def test_deleted_and_missing_posts_are_left_out(shopper):
    kept = post_create(author=shopper, text="kept")
    gone = post_create(author=shopper, text="gone")
    post_delete(actor=shopper, post_id=gone.id)
    assert [view.id for view in posts_hydrate([gone.id, 12345, kept.id])] == [kept.id]
    assert [view.id for view in posts_hydrate([gone.id], include_deleted=True)] == [gone.id]
