"""Periodic tasks: a thread that enqueues each task of settings.PERIODIC_TASKS at its interval.

The periodic tasks are safety nets (sweeps that finish transitions a lost task should have made,
moving committed outbox events), so they are idempotent: two processes enqueueing the same sweep
is harmless, and a missed tick is made up by the next one.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def periodic_tick(due: dict[str, float], now: float) -> list[str]:
    """Enqueue every task whose time has come; returns the dotted paths enqueued."""
    enqueued = []
    for path, interval in settings.PERIODIC_TASKS:
        if due.get(path, 0.0) <= now:
            try:
                import_string(path).enqueue()
                enqueued.append(path)
            except Exception:  # one broken task must not stop the others
                logger.exception("could not enqueue periodic task %s", path)
            due[path] = now + interval
    return enqueued


def start_scheduler(stop: threading.Event | None = None) -> threading.Thread:
    stop = stop or threading.Event()

    def run() -> None:
        due: dict[str, float] = {}
        while not stop.is_set():
            periodic_tick(due, time.monotonic())
            close_old_connections()
            stop.wait(1.0)

    thread = threading.Thread(target=run, name="weituan-scheduler", daemon=True)
    thread.start()
    return thread
