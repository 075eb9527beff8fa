"""Enqueueing after commit: a task without arguments waits once, however many commits ask for it."""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.core import tasks
from weituan.core.tasks import enqueue_on_commit
from weituan.deals.tasks import deal_tip_check_task
from weituan.tracking.tasks import outbox_move_task

# Real commits: the hooks run when each transaction commits, as in a server.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_tasks(settings: Any, monkeypatch: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    monkeypatch.setattr(tasks, "_last_enqueued", {})


def _waiting() -> list[str]:
    return sorted(DBTaskResult.objects.filter(status="READY").values_list("task_path", flat=True))


def test_a_waiting_run_is_not_enqueued_again(database_tasks: None, monkeypatch: Any) -> None:
    monkeypatch.setattr(tasks, "GATHER", timedelta(0))  # every later commit asks for the run's status
    move = outbox_move_task.module_path
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
        enqueue_on_commit(outbox_move_task)
    assert _waiting() == [move]
    for _ in range(3):  # later commits: the run enqueued first has not started, and will see them
        with transaction.atomic():
            enqueue_on_commit(outbox_move_task)
    assert _waiting() == [move]
    DBTaskResult.objects.update(status="RUNNING")  # a worker took it: the next commit needs a new run
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
    assert (_waiting(), DBTaskResult.objects.count()) == ([move], 2)
    DBTaskResult.objects.all().delete()  # pruned: a run that cannot be found is not waiting
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
    assert _waiting() == [move]


def test_commits_within_the_gathering_window_do_not_read_the_run_status(database_tasks: None) -> None:
    move = outbox_move_task.module_path
    before = timezone.now()
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
    run = DBTaskResult.objects.get()
    # The run starts no sooner than GATHER after the commit: no worker takes it before then.
    assert before + tasks.GATHER <= run.run_after <= timezone.now() + tasks.GATHER
    DBTaskResult.objects.update(status="RUNNING")  # what a status read would see, if one were made
    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            with transaction.atomic():
                enqueue_on_commit(outbox_move_task)
    assert not [query for query in captured.captured_queries if "django_tasks_database" in query["sql"]]
    assert DBTaskResult.objects.count() == 1
    # Once the window is over, the status is read again: the run is taken, so a new one is enqueued.
    tasks._last_enqueued[move] = (tasks._last_enqueued[move][0], time.monotonic() - 1)
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
    assert (_waiting(), DBTaskResult.objects.count()) == ([move], 2)


def test_a_rolled_back_savepoint_does_not_take_the_run_with_it(database_tasks: None) -> None:
    with transaction.atomic():
        try:
            with transaction.atomic():
                enqueue_on_commit(outbox_move_task)
                raise LookupError
        except LookupError:
            pass
        assert _waiting() == []
        enqueue_on_commit(outbox_move_task)
        with transaction.atomic():
            enqueue_on_commit(outbox_move_task)  # within the outer hook's reach: nothing more
    assert _waiting() == [outbox_move_task.module_path]


def test_a_rolled_back_transaction_enqueues_nothing(database_tasks: None) -> None:
    with pytest.raises(LookupError), transaction.atomic():
        enqueue_on_commit(outbox_move_task)
        raise LookupError
    assert DBTaskResult.objects.count() == 0


def test_tasks_with_arguments_are_each_enqueued(database_tasks: None) -> None:
    with transaction.atomic():
        enqueue_on_commit(deal_tip_check_task, 1)
        enqueue_on_commit(deal_tip_check_task, 1)
    assert _waiting() == [deal_tip_check_task.module_path] * 2


def test_a_run_after_the_task_carries_is_kept(database_tasks: None) -> None:
    later = timezone.now() + timedelta(hours=1)
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task.using(run_after=later))
    assert DBTaskResult.objects.get().run_after == later
