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
# Runs read for deletion in one scan of the table (their ids held in memory: a few MB).
PRUNE_READ = 200_000


def task_runs_prune(*, now: datetime | None = None, batch: int = PRUNE_BATCH, read: int = PRUNE_READ) -> int:
    """Delete the runs that finished longer ago than they are kept; returns how many were deleted.

    The table has no index on a run's end, so finding them is a scan: one for up to `read` runs, whose
    ids are then deleted `batch` at a time by their key, so that no statement holds the table (or
    SQLite's write lock) long. Rescanning for each batch would pass over the same rows again and again."""
    now = now or timezone.now()
    alias = router.db_for_write(DBTaskResult)
    deleted = 0
    for status, kept in (
        (TaskResultStatus.SUCCESSFUL, timedelta(hours=settings.TASK_RUNS_KEEP_HOURS)),
        (TaskResultStatus.FAILED, timedelta(days=settings.TASK_FAILURES_KEEP_DAYS)),
    ):
        finished = DBTaskResult.objects.using(alias).filter(status=status, finished_at__lt=now - kept)
        while True:
            ids = list(finished.values_list("id", flat=True)[:read])
            for start in range(0, len(ids), batch):
                # Nothing refers to a run, and no signal is owed for one: a plain DELETE.
                gone = DBTaskResult.objects.using(alias).filter(
                    id__in=ids[start : start + batch], status=status
                )
                deleted += gone._raw_delete(alias)
            if len(ids) < read:
                break
    return deleted


@task()
def task_runs_prune_task() -> int:
    """Periodic: forget the task runs that finished longer ago than they are kept."""
    return task_runs_prune()
