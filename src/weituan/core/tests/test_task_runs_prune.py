"""Finished task runs are kept for a while, then deleted by the periodic prune: the table holds the runs
waiting, running and lately finished, not one row for every post ever made."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks_db.models import DBTaskResult

from weituan.core.task_runs import task_runs_prune
from weituan.microblog.timelines.tasks import fanout_deliver_task

pytestmark = pytest.mark.django_db

PRUNE = "weituan.core.task_runs.task_runs_prune_task"


@pytest.fixture
def database_tasks(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _run(status: str, finished_ago: timedelta | None) -> str:
    """A fan-out run enqueued through the database backend, then set to `status` and its end."""
    result = fanout_deliver_task.enqueue(post_id=1)
    finished = timezone.now() - finished_ago if finished_ago is not None else None
    DBTaskResult.objects.filter(id=result.id).update(status=status, finished_at=finished)
    return str(result.id)


def _left() -> set[str]:
    return {str(run_id) for run_id in DBTaskResult.objects.values_list("id", flat=True)}


def test_runs_finished_longer_ago_than_kept_go_and_the_rest_stay(database_tasks: None) -> None:
    hour, day = timedelta(hours=1), timedelta(days=1)
    old_success = _run("SUCCESSFUL", hour + timedelta(minutes=1))
    recent_success = _run("SUCCESSFUL", hour - timedelta(minutes=1))
    recent_failure = _run("FAILED", 6 * day)
    old_failure = _run("FAILED", 7 * day + hour)
    waiting = _run("READY", None)
    running = _run("RUNNING", None)
    DBTaskResult.objects.filter(id__in=[waiting, running]).update(enqueued_at=timezone.now() - 30 * day)

    assert task_runs_prune() == 2
    assert _left() == {recent_success, recent_failure, waiting, running}
    assert old_success not in _left() and old_failure not in _left()
    assert task_runs_prune() == 0


def test_the_prune_goes_in_batches_honours_its_settings_and_is_periodic(
    database_tasks: None, settings: Any
) -> None:
    runs = [_run("SUCCESSFUL", timedelta(hours=3)) for _ in range(7)]
    kept = _run("SUCCESSFUL", timedelta(hours=1, minutes=30))
    settings.TASK_RUNS_KEEP_HOURS = 2
    assert task_runs_prune(batch=3, read=5) == 7  # scans of five and two, deletes of 3 + 2 and 2
    assert _left() == {kept}
    assert not set(runs) & _left()
    assert PRUNE in [path for path, _ in django_settings.PERIODIC_TASKS]
    assert import_string(PRUNE).call() == 0  # the task itself, as the worker calls it


@pytest.mark.django_db(transaction=True)  # the worker commits as it claims and ends each run
def test_the_worker_runs_the_prune_it_enqueues(database_tasks: None) -> None:
    old = _run("SUCCESSFUL", timedelta(hours=2))
    import_string(PRUNE).enqueue()
    call_command("db_worker", batch=True, verbosity=0)
    assert old not in _left()
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
