"""PostgreSQL: many threads following, unfollowing and blocking one account at once; counters stay exact."""

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from weituan.core.errors import PermissionDenied
from weituan.core.testing import make_user
from weituan.microblog.models import AccountStats, Follow
from weituan.microblog.services.relations import block_create, follow_create, follow_delete


def run_threads(jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def wrap(job: Callable[[], None]) -> None:
        try:
            start.wait()
            job()
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def assert_counters_match_rows() -> None:
    for stats in AccountStats.objects.all():
        assert stats.followers_count == Follow.objects.filter(followee_id=stats.user_id).count()
        assert stats.following_count == Follow.objects.filter(follower_id=stats.user_id).count()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_follow_and_unfollow_keep_counters_exact() -> None:
    target = make_user("popular")
    fans = [make_user(f"fan{index}") for index in range(8)]

    def churn(fan: Any, final_follow: bool) -> Callable[[], None]:
        def job() -> None:
            for _ in range(2):
                follow_create(follower=fan, followee_id=target.pk)
                follow_delete(follower=fan, followee_id=target.pk)
            if final_follow:
                follow_create(follower=fan, followee_id=target.pk)
                # The target follows back at the same moment: the two lock the same pair of rows.
                follow_create(follower=target, followee_id=fan.pk)

        return job

    # Every fan runs twice at once, so duplicate follows and unfollows race each other too.
    jobs = [churn(fan, index % 2 == 0) for index, fan in enumerate(fans) for _ in range(2)]
    assert run_threads(jobs) == []
    expected = {fan.pk for index, fan in enumerate(fans) if index % 2 == 0}
    assert set(Follow.objects.filter(followee=target).values_list("follower_id", flat=True)) == expected
    stats = AccountStats.objects.get(user=target)
    assert (stats.followers_count, stats.following_count) == (4, 4)
    assert_counters_match_rows()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_follow_racing_a_block_never_leaves_a_follow() -> None:
    target = make_user("shop")
    fans = [make_user(f"racer{index}") for index in range(10)]

    def follow_job(fan: Any) -> Callable[[], None]:
        def job() -> None:
            # When the block came first the follow is refused, as it should be.
            with contextlib.suppress(PermissionDenied):
                follow_create(follower=fan, followee_id=target.pk)

        return job

    def block_job(fan: Any) -> Callable[[], None]:
        def job() -> None:
            block_create(blocker=target, blocked_id=fan.pk)

        return job

    jobs = [follow_job(fan) for fan in fans] + [block_job(fan) for fan in fans]
    assert run_threads(jobs) == []
    assert not Follow.objects.filter(followee=target).exists()
    assert_counters_match_rows()
