"""The background task worker: a thread inside the server process, or a process of its own."""

import logging
import os
import socket
import threading

from django.conf import settings
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
