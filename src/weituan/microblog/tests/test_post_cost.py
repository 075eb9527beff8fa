"""The statements a post costs, and its fan-out task committed with it.

Posting is the hottest write: an original post with a topic is a handful of hand-written statements in
one transaction, and the API request around it adds the token lookup and, without Redis, the write
limit's counter in the same transaction. The counts below fail if a change adds a statement.
"""

import json
import os
from typing import Any

import pytest
from django.core import signals
from django.db import close_old_connections, connection, transaction
from django.tasks.signals import task_enqueued
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from weituan.accounts.tokens import access_token_issue
from weituan.mastodon.api_statuses_fast import with_status_post_wsgi
from weituan.microblog.models import Post, PostTopic
from weituan.microblog.services.posts import post_create, post_publish
from weituan.microblog.stats import account_counts, topic_counts
from weituan.microblog.timelines.tasks import fanout_deliver_task

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
# The search index: one upsert on PostgreSQL; on SQLite's FTS5 one insert (a new post has no row).
INDEX = 1
# A topic's counter and the post's link to it: one statement on PostgreSQL, two on SQLite.
TOPIC = 1 if POSTGRES else 2
# The write limit's counter: always in the database; in Redis too when the run has a Redis server.
LIMIT_STORES = ["database", "redis"] if os.environ.get("REDIS_URL") else ["database"]
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _sql(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries]


def test_an_original_post_with_a_topic_is_a_handful_of_statements(shopper: Any) -> None:
    post_create(author=shopper, text="第一条 #双十一#")  # the topic and the counters row now exist
    with CaptureQueriesContext(connection) as captured:
        published = post_publish(author=shopper, text="第二条 #双十一#")
    # post, author's counters (returning them), search index, topic counter (returning the topic) and
    # link: inside the caller's transaction (the test's) a plain post takes no savepoint of its own.
    # The fan-out task is enqueued after the commit by this test backend.
    assert len(captured.captured_queries) == 2 + INDEX + TOPIC, _sql(captured)
    assert "savepoint" not in " ".join(_sql(captured)).lower()
    # The use is counted last: on SQLite on the topic's row; on PostgreSQL in this connection's share
    # of its counter, the topic's row left unlocked.
    counted = _sql(captured)[-TOPIC].lower()
    if POSTGRES:
        assert 'insert into "microblog_topiccount"' in counted and 'update "microblog_topic"' not in counted
    else:
        assert 'update "microblog_topic"' in counted
    post = Post.objects.get(id=published.post.id)
    assert (post.text, post.author_id, post.kind) == ("第二条 #双十一#", shopper.pk, "original")
    assert [topic.name for topic in published.topics] == ["双十一"]
    topic_id = published.topics[0].id
    assert topic_counts([topic_id])[topic_id].posts == 2
    assert PostTopic.objects.filter(post=post).count() == 1
    assert published.author_counts == account_counts([shopper.pk])[shopper.pk]
    assert published.author_counts.posts == 2


def test_with_the_database_task_backend_the_fan_out_task_commits_with_the_post(
    shopper: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.TASKS = DATABASE_TASKS
    post_create(author=shopper, text="第一条 #双十一#")
    # Its fan-out task claimed by a worker: on SQLite a post written while one waits writes none (below).
    DBTaskResult.objects.update(status="RUNNING")
    announced: list[Any] = []
    task_enqueued.connect(_announced := lambda sender, task_result, **kw: announced.append(task_result))
    try:
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as captured:
            published = post_publish(author=shopper, text="第二条 #双十一#")
            assert announced == []  # announced once committed, as an enqueue after the commit was
    finally:
        task_enqueued.disconnect(_announced)
    assert [result.kwargs for result in announced] == [{"post_id": published.post.id}]
    if POSTGRES:
        # The whole write is one statement, the task's row in it (so in the post's transaction).
        assert len(captured.captured_queries) == 1, _sql(captured)
        assert "dbtaskresult" in _sql(captured)[0].lower()
    else:
        # As above, plus the look-up of a waiting fan-out task and the task's row (inside the post's
        # transaction), less the search index: the worker's run of that task indexes the post (see
        # `search.facade.post_index_deferred`).
        assert len(captured.captured_queries) == 4 + TOPIC, _sql(captured)
        assert "status = 'ready'" in _sql(captured)[2].lower()
        assert "insert into" in _sql(captured)[3].lower() and "dbtaskresult" in _sql(captured)[3].lower()
    row = DBTaskResult.objects.get(args_kwargs__kwargs__post_id=published.post.id)
    # The row is the one the backend's own enqueue writes, field for field.
    reference = fanout_deliver_task.enqueue(post_id=published.post.id).db_result  # type: ignore[attr-defined]
    reference.refresh_from_db()
    skip = {"id", "enqueued_at"}
    fields = [field.attname for field in DBTaskResult._meta.concrete_fields if field.attname not in skip]
    assert {name: getattr(row, name) for name in fields} == {
        name: getattr(reference, name) for name in fields
    }
    assert row.status == "READY" and row.task_result.task.func is fanout_deliver_task.func


def test_on_sqlite_a_post_written_while_a_fan_out_task_waits_writes_none(shopper: Any, settings: Any) -> None:
    """The waiting task's run delivers it (timelines/tests/test_fanout_coalesced.py); on PostgreSQL
    every post writes its own, in the one statement of its write."""
    settings.TASKS = DATABASE_TASKS
    post_create(author=shopper, text="第一条 #双十一#")
    with CaptureQueriesContext(connection) as captured:
        published = post_publish(author=shopper, text="第二条 #双十一#")
    own = DBTaskResult.objects.filter(args_kwargs__kwargs__post_id=published.post.id).count()
    if POSTGRES:
        assert (own, len(captured.captured_queries)) == (1, 1), _sql(captured)
    else:
        assert (own, DBTaskResult.objects.count()) == (0, 1)
        # The post's statements and the look-up that found the task waiting, no task row.
        assert len(captured.captured_queries) == 3 + TOPIC, _sql(captured)
        assert not any(
            "insert into" in sql.lower() and "dbtaskresult" in sql.lower() for sql in _sql(captured)
        )


def test_a_rolled_back_post_leaves_no_task(shopper: Any, settings: Any) -> None:
    settings.TASKS = DATABASE_TASKS
    with transaction.atomic():
        post = post_create(author=shopper, text="撤回")
        assert DBTaskResult.objects.filter(args_kwargs__kwargs__post_id=post.id).count() == 1
        transaction.set_rollback(True)
    assert not Post.objects.filter(id=post.id).exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.parametrize("limit_in", LIMIT_STORES)
def test_a_post_over_the_api_adds_the_token_and_the_write_limit(
    shopper: Any, settings: Any, limit_in: str
) -> None:
    if limit_in == "database":
        settings.REDIS_URL = None
    raw, _ = access_token_issue(user=shopper)
    app = with_status_post_wsgi(lambda environ, start_response: pytest.fail("left to Django"))

    def post(text: str) -> Any:
        body = json.dumps({"status": text}).encode()
        environ = (
            RequestFactory()
            .post(
                "/api/v1/statuses",
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {raw}",
            )
            .environ
        )
        started: list[str] = []
        # As Django's test client does: the test's transaction must outlive the request.
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            content = b"".join(app(environ, lambda status, headers: started.append(status)))
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        assert started == ["200 OK"], content
        return json.loads(content)

    post("第一条 #双十一#")  # the caller is marked as seen on their first request, once a window
    with CaptureQueriesContext(connection) as captured:
        status = post("第二条 #双十一#")
    # token + the post's statements; without Redis, the write limit's counter (one upsert) in the
    # same transaction as the post, inside its savepoint here (the test's transaction is open).
    limit = 3 if limit_in == "database" else 0
    assert len(captured.captured_queries) == 1 + 2 + INDEX + TOPIC + limit, _sql(captured)
    assert status["account"]["statuses_count"] == 2
