"""Background tasks of tracking."""

from django.tasks import task


@task()
def outbox_move_task() -> int:
    """Move committed outbox events to the analytics store (idempotent; safe to run many times)."""
    from weituan.tracking.services.outbox import outbox_move

    return outbox_move()
