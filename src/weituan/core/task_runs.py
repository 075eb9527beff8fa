"""Finished task runs pruned.

The database task backend keeps a row for every run: one per post (its fan-out), per order event, per
sweep. Nothing reads a run once it has finished, bar an operator looking into a failure, yet the rows
stay; left alone the table grows by every post ever made, and each claim of the next task by a worker
reads through an ever larger table. Runs that succeeded are deleted once `TASK_RUNS_KEEP_HOURS` have
passed since they finished, runs that failed after `TASK_FAILURES_KEEP_DAYS`; runs waiting or running
are never touched.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import router
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

PRUNE_BATCH = 5000


def task_runs_prune(*, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete the runs that finished longer ago than they are kept, `batch` at a time so that no
    statement holds the table (or SQLite's write lock) long; returns how many were deleted."""
    now = now or timezone.now()
    alias = router.db_for_write(DBTaskResult)
    deleted = 0
    for status, kept in (
        (TaskResultStatus.SUCCESSFUL, timedelta(hours=settings.TASK_RUNS_KEEP_HOURS)),
        (TaskResultStatus.FAILED, timedelta(days=settings.TASK_FAILURES_KEEP_DAYS)),
    ):
        finished = DBTaskResult.objects.using(alias).filter(status=status, finished_at__lt=now - kept)
        while True:
            ids = list(finished.values_list("id", flat=True)[:batch])
            if ids:
                # Nothing refers to a run, and no signal is owed for one: a plain DELETE.
                gone = DBTaskResult.objects.using(alias).filter(id__in=ids, status=status)
                deleted += gone._raw_delete(alias)
            if len(ids) < batch:
                break
    return deleted


@task()
def task_runs_prune_task() -> int:
    """Periodic: forget the task runs that finished longer ago than they are kept."""
    return task_runs_prune()
