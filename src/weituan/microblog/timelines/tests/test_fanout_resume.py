"""A delivery whose run stopped mid-way (a crash between two batches) is taken over by the sweep once its
lease has run out, on both stores: every active follower gets the post once, the job ends delivered
with each follower counted once, and of two runs of one job only one goes on."""

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from weituan.core.redis import get_redis
from weituan.microblog.services.posts import post_create, post_delete
from weituan.microblog.timelines import fanout, upkeep
from weituan.microblog.timelines.fanout import fanout_deliver
from weituan.microblog.timelines.models import FanoutJob, TimelineEntry
from weituan.microblog.timelines.queries import home_timeline_ids
from weituan.microblog.timelines.store import Entry, home_key, timeline_store
from weituan.microblog.timelines.upkeep import FANOUT_LEASE, fanout_sweep


class Crash(Exception):
    """The worker dying in the middle of a delivery."""


class StoreStoppingOnce:
    """The timeline store, but the delivery to the batch starting with `first_id` writes its entries
    and then runs `then` (once): by default a crash before the batch is recorded."""

    def __init__(self, first_id: int, then: Callable[[], None] | None = None) -> None:
        self.store = timeline_store()
        self.first_id = first_id
        self.then = then
        self.done = False

    def deliver(self, user_ids: Sequence[int], entry: Entry) -> int:
        count = self.store.deliver(user_ids, entry)
        if not self.done and user_ids and user_ids[0] == self.first_id:
            self.done = True
            if self.then is None:
                raise Crash
            self.then()
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _world(merchant: Any, people: Any, follow: Any, monkeypatch: Any) -> tuple[list[Any], Any]:
    """Five readers following the merchant, all reading their timelines (the merchant too), and a
    post of theirs not delivered yet; batches of two followers."""
    readers = people(5)
    for reader in readers:
        follow(reader, merchant)
    for user in (*readers, merchant):
        home_timeline_ids(user.pk)
    monkeypatch.setattr(fanout, "FANOUT_BATCH", 2)
    return readers, post_create(author=merchant, text="团购开始")


def _crash_in_second_batch(post: Any, readers: list[Any], monkeypatch: Any) -> None:
    """Deliver `post`, the run stopping once the second batch is written, before it is recorded (the
    store stays wrapped, passing everything through from then on)."""
    crashing = StoreStoppingOnce(readers[2].pk)
    monkeypatch.setattr(fanout, "timeline_store", lambda: crashing)
    with pytest.raises(Crash):
        fanout_deliver(post_id=post.id)


def _job(post: Any) -> tuple[str, int, int]:
    job = FanoutJob.objects.get(post_id=post.id)
    return job.state, job.cursor, job.delivered


def _lease_runs_out(post: Any) -> None:
    FanoutJob.objects.filter(post_id=post.id).update(
        progress_at=timezone.now() - FANOUT_LEASE - timedelta(seconds=1)
    )


def _assert_each_got_it_once(backend: str, post: Any, users: Sequence[Any], stored: Any) -> None:
    for user in users:
        assert stored(user) == [post.id]
    if backend == "redis":
        for user in users:
            members = get_redis().zrangebylex(home_key(user.pk), f"[{post.id:019d}:", f"[{post.id:019d};")
            assert len(members) == 1
    else:
        rows = TimelineEntry.objects.filter(post_id=post.id)
        assert sorted(rows.values_list("user_id", flat=True)) == sorted(user.pk for user in users)


@pytest.mark.django_db
def test_a_delivery_stopped_mid_way_is_taken_over_after_the_lease(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any
) -> None:
    readers, post = _world(merchant, people, follow, monkeypatch)
    _crash_in_second_batch(post, readers, monkeypatch)
    # The first batch was recorded; the second written but not recorded; the third never reached.
    assert _job(post) == ("delivering", readers[1].pk, 2)
    assert [stored(reader) for reader in readers] == [[post.id]] * 4 + [[]]

    # Within the lease the run may still be going: the sweep leaves it alone.
    assert fanout_sweep() == 0
    assert _job(post) == ("delivering", readers[1].pk, 2)
    assert stored(readers[4]) == []

    _lease_runs_out(post)
    assert fanout_sweep() == 1
    assert _job(post) == ("delivered", readers[4].pk, 5)
    _assert_each_got_it_once(backend, post, [*readers, merchant], stored)
    assert fanout_sweep() == 0
    assert _job(post) == ("delivered", readers[4].pk, 5)


@pytest.mark.django_db
def test_a_run_overtaken_by_the_sweep_stops_at_its_next_batch(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any
) -> None:
    readers, post = _world(merchant, people, follow, monkeypatch)
    swept: list[int] = []

    def stalled_then_swept() -> None:
        # The run stalls past its lease in its second batch; the sweep takes the job over, records
        # that batch itself, and stops in the third.
        _lease_runs_out(post)
        crashing = StoreStoppingOnce(readers[4].pk)
        monkeypatch.setattr(fanout, "timeline_store", lambda: crashing)
        swept.append(fanout_sweep())

    slow = StoreStoppingOnce(readers[2].pk, then=stalled_then_swept)
    monkeypatch.setattr(fanout, "timeline_store", lambda: slow)
    written = fanout_deliver(post_id=post.id)

    assert swept == [1]
    # The stalled run could not record its second batch (the cursor had moved on), so it stopped
    # there, leaving the entries it wrote, which the sweep's run wrote too and counted once.
    assert written == 1 + 2 + 2  # the merchant, then its two batches
    assert _job(post) == ("delivering", readers[3].pk, 4)
    assert [stored(reader) for reader in readers] == [[post.id]] * 5
    _lease_runs_out(post)
    assert fanout_sweep() == 1
    assert _job(post) == ("delivered", readers[4].pk, 5)
    _assert_each_got_it_once(backend, post, [*readers, merchant], stored)


@pytest.mark.django_db
def test_a_stalled_delivery_of_a_post_deleted_meanwhile_is_taken_back_out(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any
) -> None:
    readers, post = _world(merchant, people, follow, monkeypatch)
    _crash_in_second_batch(post, readers, monkeypatch)
    post_delete(actor=merchant, post_id=post.id)  # its withdrawal never ran
    assert stored(readers[0]) == [post.id]
    _lease_runs_out(post)
    assert fanout_sweep() == 1
    assert FanoutJob.objects.get(post_id=post.id).state == "withdrawn"
    assert [stored(user) for user in (*readers, merchant)] == [[]] * 6
    assert fanout_sweep() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_take_a_stalled_delivery_over_once(
    backend: str, merchant: Any, people: Any, follow: Any, stored: Any, monkeypatch: Any, settings: Any
) -> None:
    # Committed work queues its tasks without running them: the post's delivery is run by hand below.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    readers, post = _world(merchant, people, follow, monkeypatch)
    _crash_in_second_batch(post, readers, monkeypatch)
    _lease_runs_out(post)
    runs: list[int] = []
    deliver = upkeep.fanout_deliver
    swept: list[int] = []
    swept_meanwhile: list[int] = []
    errors: list[BaseException] = []

    def in_thread(job: Callable[[], None], barrier: threading.Barrier | None = None) -> threading.Thread:
        def run() -> None:
            try:
                if barrier is not None:
                    barrier.wait()
                job()
            except BaseException as exc:  # asserted on below
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def deliver_while_another_sweeps(*, post_id: int) -> int:
        runs.append(post_id)
        if len(runs) == 1:
            # A third sweep while the job is being taken over finds it taken.
            in_thread(lambda: swept_meanwhile.append(fanout_sweep())).join()
        return deliver(post_id=post_id)

    monkeypatch.setattr(upkeep, "fanout_deliver", deliver_while_another_sweeps)
    start = threading.Barrier(2)
    for thread in [in_thread(lambda: swept.append(fanout_sweep()), start) for _ in range(2)]:
        thread.join()

    assert errors == []
    assert sorted(swept) == [0, 1]
    assert swept_meanwhile == [0]
    assert runs == [post.id]
    assert _job(post) == ("delivered", readers[4].pk, 5)
    _assert_each_got_it_once(backend, post, [*readers, merchant], stored)


@pytest.mark.django_db
def test_the_lease_costs_a_delivery_no_statement(
    backend: str,
    merchant: Any,
    people: Any,
    follow: Any,
    stored: Any,
    monkeypatch: Any,
    settings: Any,
    django_assert_num_queries: Any,
) -> None:
    settings.TIMELINE_CAP = 10**12  # the database store's occasional trim never falls due
    readers = people(3)
    for reader in readers:
        follow(reader, merchant)
        home_timeline_ids(reader.pk)
    monkeypatch.setattr(fanout, "FANOUT_BATCH", 2)
    post = post_create(author=merchant, text="两批")
    # Start, job, followers, then per batch the store's write (an INSERT on the database store) and
    # the statement recording it, which renews the lease too.
    per_batch = 2 if backend == "db" else 1
    with django_assert_num_queries(3 + 2 * per_batch):
        assert fanout_deliver(post_id=post.id) == 3
    job = FanoutJob.objects.get(post_id=post.id)
    assert (job.state, job.cursor, job.delivered) == ("delivered", readers[2].pk, 3)
    assert job.progress_at >= job.created_at
