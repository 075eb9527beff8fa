"""Scheduling transitions: tasks stored in the database with `run_after`, enqueued once the write commits."""

from datetime import datetime
from typing import Any

from django.tasks import Task
from django.utils import timezone

from weituan.core.tasks import enqueue_on_commit


def schedule_at(task: Task, when: datetime, *args: Any) -> None:
    """Run `task(*args)` at `when` (now if it is due).

    A backend that cannot defer (the inline backend of tests) gets nothing for future work; the deal sweep
    (`deals_sweep`) finds every due transition anyway, which is also what makes a lost task harmless.
    """
    if when <= timezone.now():
        enqueue_on_commit(task, *args)
    elif task.get_backend().supports_defer:
        enqueue_on_commit(task.using(run_after=when), *args)
