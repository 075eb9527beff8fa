"""Enqueueing background tasks once the surrounding transaction has committed."""

from functools import partial
from typing import Any

from django.db import transaction
from django.tasks import Task


def enqueue_on_commit(task: Task, *args: Any, **kwargs: Any) -> None:
    """Enqueue `task` after commit, so a worker never sees ids of rows that were rolled back."""
    transaction.on_commit(partial(task.enqueue, *args, **kwargs), robust=False)
