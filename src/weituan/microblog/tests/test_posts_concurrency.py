"""Counters stay exact when many people post, repost, comment and like the same post at once (PostgreSQL)."""

import threading

import pytest
from django.db import connection

from weituan.accounts.models import User
from weituan.microblog.models import AccountStats, Like, Notification, Post
from weituan.microblog.services.interactions import comment_create, like_add, like_remove
from weituan.microblog.services.posts import post_create, repost_create

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
