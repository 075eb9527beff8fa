"""`weituan tracking_flush`: move committed outbox events to the analytics store (recovery after a crash)."""

from typing import Any

from django.core.management.base import BaseCommand

from weituan.tracking.services.outbox import outbox_move


class Command(BaseCommand):
    help = "Move every committed, unmoved outbox event to the analytics store (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        moved = outbox_move()
        self.stdout.write(f"{moved} outbox events stored")
