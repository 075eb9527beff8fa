"""Counters stay exact when many people post, repost, comment and like the same post at once, and
posts of one topic do not wait for each other (PostgreSQL)."""

import threading

import pytest
from django.db import connection, transaction

from weituan.accounts.models import User
from weituan.microblog.models import AccountStats, Like, Notification, Post, Topic, TopicCount
from weituan.microblog.services.interactions import comment_create, like_add, like_remove
from weituan.microblog.services.posts import post_create, post_publish, repost_create
from weituan.microblog.stats import TOPIC_SHARD_SQL, topic_counts

THREADS = 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_threads_posting_reposting_and_liking_keep_exact_counts():
    author = User.objects.create(username="hot_shop")
    people = User.objects.bulk_create([User(username=f"fan_{index:02d}") for index in range(THREADS)])
    root = post_create(author=author, text="#秒杀# 爆款")
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    hops: list[int] = []

    def act(index: int, person: User) -> None:
        try:
            start.wait()
            post_create(author=person, text=f"#秒杀# 我也来 {index}")
            repost = repost_create(reposter=person, post_id=root.id, comment=f"冲{index}")
            if index % 5 == 0:
                hops.append(repost_create(reposter=person, post_id=repost.id).id)
            like_add(user=person, post_id=root.id)
            like_add(user=person, post_id=root.id)  # a retried like changes nothing
            if index % 2 == 0:
                like_remove(user=person, post_id=root.id)
                like_add(user=person, post_id=root.id)
            comment_create(author=person, post_id=root.id, text="想要")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=act, args=(i, person)) for i, person in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    root.refresh_from_db()
    extra_hops = THREADS // 5
    assert root.reposts_count == THREADS + extra_hops
    assert root.likes_count == THREADS
    # Every first hop carried a comment (a quote); the second hops are plain forwards.
    assert root.quotes_count == THREADS
    assert root.comments_count == THREADS
    assert Like.objects.filter(post=root).count() == THREADS
    assert len(hops) == extra_hops
    assert Post.objects.filter(root=root, kind="repost", depth=2).count() == extra_hops
    assert all(
        count == (3 if index % 5 == 0 else 2)
        for index, count in enumerate(
            AccountStats.objects.filter(user__in=people)
            .order_by("user__username")
            .values_list("posts_count", flat=True)
        )
    )
    assert Notification.objects.filter(recipient=author, kind="repost").count() == THREADS
    assert Notification.objects.filter(recipient=author, kind="like").count() == THREADS
    assert Notification.objects.filter(recipient=author, kind="comment").count() == THREADS
    topic = Topic.objects.get(name="秒杀")
    assert topic_counts([topic.id])[topic.id].posts == THREADS + 1


def _shard() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {TOPIC_SHARD_SQL}")
        return int(cursor.fetchone()[0])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_post_of_a_topic_does_not_wait_for_another_not_yet_committed():
    """The first post holds its transaction open; a second post of the same topic, from a connection
    with another share of the counter, is written meanwhile (it would wait on one counter row)."""
    first_author = User.objects.create(username="first_poster")
    second_author = User.objects.create(username="second_poster")
    post_create(author=first_author, text="#爆款# 预热")  # the topic exists
    holding = threading.Event()
    release = threading.Event()
    shards: list[int] = []
    errors: list[BaseException] = []

    def hold_open() -> None:
        try:
            with transaction.atomic():
                post_publish(author=first_author, text="#爆款# 第一条")
                shards.append(_shard())
                holding.set()
                release.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            holding.set()
        finally:
            connection.close()

    written: list[int] = []
    waiting = threading.Event()

    def second_post(done: threading.Event) -> None:
        # Each of these threads keeps its own connection until the test ends, so a thread whose
        # connection shares the first one's counter row leaves the next thread another connection.
        try:
            if _shard() != shards[0]:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL lock_timeout = '2s'")
                    written.append(post_publish(author=second_author, text="#爆款# 第二条").post.id)
            done.set()
            waiting.wait(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            done.set()
        finally:
            connection.close()

    holder = threading.Thread(target=hold_open)
    holder.start()
    assert holding.wait(30) and errors == []
    others: list[threading.Thread] = []
    for _ in range(8):
        done = threading.Event()
        thread = threading.Thread(target=second_post, args=(done,))
        thread.start()
        others.append(thread)
        assert done.wait(30)
        if written or errors:
            break
    release.set()
    waiting.set()
    for thread in [holder, *others]:
        thread.join()

    assert errors == []
    assert len(written) == 1
    topic = Topic.objects.get(name="爆款")
    assert topic_counts([topic.id])[topic.id].posts == 3
    assert TopicCount.objects.filter(topic=topic).count() >= 2
