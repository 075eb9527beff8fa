"""Publishing with the fan-out task's row written alongside the post (the database task backend): the
rows a post leaves, whichever way it is written (one statement on PostgreSQL, a transaction elsewhere).

Each test compares what was written with exact values: the post, the author's counters, the topics'
counters and links, the search row and the task's row.
"""

import warnings
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.microblog.models import AccountStats, Post, PostKind, PostTopic, Topic
from weituan.microblog.search.queries import posts_search
from weituan.microblog.services.post_rows import post_values
from weituan.microblog.services.posts import post_create, post_draft, post_draft_publish, post_publish
from weituan.microblog.stats import TopicCounts, account_counts, topic_counts
from weituan.microblog.timelines.fanout import fanout_deliver

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture(autouse=True)
def _database_tasks(settings: Any) -> None:
    settings.TASKS = DATABASE_TASKS


def _task_post_ids() -> list[int]:
    return sorted(row.args_kwargs["kwargs"]["post_id"] for row in DBTaskResult.objects.all())


def test_a_first_post_makes_the_counters_and_the_topic(shopper: Any) -> None:
    assert not AccountStats.objects.filter(user=shopper).exists()
    with CaptureQueriesContext(connection) as captured:
        published = post_publish(author=shopper, text="开团了 #新品首发#")
    if POSTGRES:
        assert len(captured.captured_queries) == 1
    post = Post.objects.get(id=published.post.id)
    assert (post.text, post.author_id, post.created_at) == (
        "开团了 #新品首发#",
        shopper.pk,
        published.post.created_at,
    )
    stats = AccountStats.objects.get(user=shopper)
    assert (stats.posts_count, stats.followers_count, stats.following_count) == (1, 0, 0)
    assert stats.last_post_at is not None and stats.last_post_at >= post.created_at
    assert stats.newest_post_id == post.id
    assert published.author_counts == account_counts([shopper.pk])[shopper.pk]
    topic = Topic.objects.get(name="新品首发")
    assert topic.display == "新品首发"
    assert topic_counts([topic.id])[topic.id] == TopicCounts(posts=1, last_used_at=post.created_at)
    assert [(t.id, t.name, t.display) for t in published.topics] == [(topic.id, "新品首发", "新品首发")]
    assert list(PostTopic.objects.filter(post=post).values_list("topic_id", "author_id")) == [
        (topic.id, shopper.pk)
    ]
    assert _task_post_ids() == [post.id]
    # Indexed by the post's own statement on PostgreSQL; on SQLite by its fan-out, which the worker
    # runs from that task (see `search.facade.post_index_deferred`).
    assert posts_search(query="新品首发", viewer=shopper) == ([post.id] if POSTGRES else [])
    fanout_deliver(post_id=post.id)
    assert posts_search(query="新品首发", viewer=shopper) == [post.id]


def test_topics_are_counted_in_name_order_and_returned_as_read_back(shopper: Any) -> None:
    post_create(author=shopper, text="预热 #Banana#")
    published = post_publish(author=shopper, text="三个话题 #banana# #苹果# #Cherry#")
    names = [topic.name for topic in published.topics]
    assert names == sorted(["banana", "苹果", "cherry"])
    by_name = {topic.name: topic for topic in Topic.objects.all()}
    counts = topic_counts([topic.id for topic in by_name.values()])
    assert {name: counts[by_name[name].id].posts for name in names} == {"banana": 2, "苹果": 1, "cherry": 1}
    assert {counts[by_name[name].id].last_used_at for name in names} == {published.post.created_at}
    assert by_name["banana"].display == "Banana"  # the first spelling stays
    assert [(t.id, t.posts_count, t.display, t.created_at, t.last_used_at) for t in published.topics] == [
        (
            by_name[n].id,
            by_name[n].posts_count,
            by_name[n].display,
            by_name[n].created_at,
            by_name[n].last_used_at,
        )
        for n in names
    ]
    linked = PostTopic.objects.filter(post_id=published.post.id).values_list("topic_id", flat=True)
    assert sorted(linked) == sorted(by_name[name].id for name in names)
    assert published.author_counts.posts == 2 == AccountStats.objects.get(user=shopper).posts_count
    assert AccountStats.objects.get(user=shopper).newest_post_id == published.post.id


def test_a_post_without_topics_still_counts_and_indexes(shopper: Any) -> None:
    published = post_publish(author=shopper, text="今天的团购很划算")
    assert published.topics == []
    assert published.author_counts.posts == 1
    assert not PostTopic.objects.exists()
    assert _task_post_ids() == [published.post.id]


def test_a_post_rolled_back_with_its_caller_leaves_nothing(shopper: Any) -> None:
    post_create(author=shopper, text="第一条 #双十一#")
    topic_id = Topic.objects.get(name="双十一").id
    before = (Post.objects.count(), DBTaskResult.objects.count(), topic_counts([topic_id])[topic_id])
    with transaction.atomic():
        post_create(author=shopper, text="撤回 #双十一# #新话题#")
        assert topic_counts([topic_id])[topic_id].posts == 2
        transaction.set_rollback(True)
    after = (Post.objects.count(), DBTaskResult.objects.count(), topic_counts([topic_id])[topic_id])
    assert after == before
    assert not Topic.objects.filter(name="新话题").exists()
    assert AccountStats.objects.get(user=shopper).posts_count == 1


def test_a_post_with_a_mention_records_it_and_its_task(shopper: Any, merchant: Any) -> None:
    published = post_publish(author=shopper, text=f"@{merchant.username} 还有货吗 #双十一#")
    assert [user.pk for user in published.mentioned] == [merchant.pk]
    assert [topic.name for topic in published.topics] == ["双十一"]
    assert _task_post_ids() == [published.post.id]


def _comparable(value: Any) -> Any:
    # A JSON value is handed to the driver wrapped; what it carries is what is stored.
    return ("json", value.obj) if hasattr(value, "obj") else value


def test_a_posts_values_are_what_its_fields_would_prepare(shopper: Any) -> None:
    aware = timezone.now()
    posts = [
        Post(author=shopper, kind=PostKind.ORIGINAL, text="一条", created_at=aware, deal_id=7, language="zh"),
        # Values of other types than the fields' own are prepared by the fields, as `save` does.
        Post(author_id=str(shopper.pk), text=42, deal_id="8", depth=True, created_at=aware),  # type: ignore[misc]
        Post(
            author=shopper,
            kind=PostKind.REPOST,
            text="转发",
            chain=[{"post_id": 1, "user_id": 2, "username": "a", "comment": "好"}],
            created_at=aware.replace(tzinfo=None),
            edited_at=aware,
        ),
    ]
    for post in posts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the naive datetime, warned of both ways
            expected = [
                field.get_db_prep_save(getattr(post, field.attname), connection)
                for field in Post._meta.concrete_fields
            ]
            values = post_values(post)
        assert [_comparable(v) for v in values] == [_comparable(v) for v in expected]
        assert [type(v) for v in values] == [type(v) for v in expected]


def test_a_draft_reads_and_writes_nothing_and_is_numbered_when_written(shopper: Any, merchant: Any) -> None:
    # What a post's write can be readied with before its writer waits its turn: checked, its row made,
    # its mentions, topics and links found; its id and time are taken when it is written, so a post
    # written in between comes before it.
    with CaptureQueriesContext(connection) as drafting:
        draft = post_draft(
            author=shopper,
            text=f"@{merchant.username} 看 https://example.com/deal #拼团# #A好物#",
            visibility="public",
        )
    assert drafting.captured_queries == []
    assert draft.post.id is None and draft.post.created_at is None
    assert draft.mentions == [merchant.username]
    assert draft.topics == [("a好物", "A好物"), ("拼团", "拼团")]
    assert draft.urls == ["https://example.com/deal"]
    between = post_publish(author=shopper, text="先发的")
    published = post_draft_publish(draft)
    assert published.post.id > between.post.id
    assert published.post.created_at >= between.post.created_at
    post = Post.objects.get(id=published.post.id)
    assert (post.created_at, post.text) == (published.post.created_at, draft.post.text)
    assert [user.pk for user in published.mentioned] == [merchant.pk]
    assert [topic.name for topic in published.topics] == ["a好物", "拼团"]
    assert account_counts([shopper.pk])[shopper.pk].posts == 2
    with pytest.raises(ValueError, match="published already"):
        post_draft_publish(draft)  # a draft is written once
    assert account_counts([shopper.pk])[shopper.pk].posts == 2


def test_a_draft_refuses_what_publishing_refuses_before_anything_is_written(shopper: Any) -> None:
    from weituan.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        post_draft(author=shopper, text="长" * 141)
    assert refused.value.code == "post_too_long"
    with pytest.raises(ValidationFailed) as refused:
        post_draft(author=shopper, text="ok", visibility="everyone")
    assert refused.value.code == "invalid_visibility"
    assert not Post.objects.filter(author=shopper).exists()
