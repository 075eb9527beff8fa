"""The background task worker: a thread inside the server process, or a process of its own."""

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker

logger = logging.getLogger(__name__)


def make_worker(*, interval: float = 0.2, batch: bool = False, max_tasks: int | None = None) -> Worker:
    return Worker(
        queue_names=["*"],
        interval=interval,
        batch=batch,
        backend_name="default",
        startup_delay=False,
        max_tasks=max_tasks,
        worker_id=f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"[:64],
        excluded_queue_names=[],
    )


def batch_run(worker: Worker) -> None:
    """Run `worker` (made with `batch=True`) until no task is due, counting as due a task that waits
    no longer than the product's own short gathering wait (FANOUT_GATHER_MS, a new post's fan-out
    on SQLite): `weituan worker --batch` run right after a post still delivers it."""
    soon = timedelta(milliseconds=settings.FANOUT_GATHER_MS)
    while True:
        worker.run()
        if not soon or not worker.running:
            return
        wait = _next_due_within(worker, soon)
        if wait is None:
            return
        time.sleep(wait)


def _next_due_within(worker: Worker, soon: timedelta) -> float | None:
    """Seconds until the first waiting task of `worker`'s backend due within `soon` from now, or None."""
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    first = (
        DBTaskResult.objects.filter(
            status=TaskResultStatus.READY, backend_name=worker.backend_name, run_after__lte=now + soon
        )
        .order_by("run_after")
        .values_list("run_after", flat=True)
        .first()
    )
    return None if first is None else max(0.0, (first - now).total_seconds())


def start_embedded_worker() -> threading.Thread | None:
    """Run the task worker on a daemon thread, unless the tasks backend is not the database one."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_db.DatabaseBackend":
        return None
    worker = make_worker()

    def run() -> None:
        try:
            worker.run()
        except Exception:  # a crashed worker must be visible, not silent
            logger.exception("embedded task worker stopped")

    thread = threading.Thread(target=run, name="weituan-task-worker", daemon=True)
    thread.start()
    return thread
