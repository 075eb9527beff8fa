"""`weituan tracking_flush`: store spooled clicks and committed outbox events (recovery after a crash)."""

from typing import Any

from weituan.core.commands import WeituanCommand
from weituan.tracking.buffer import write_buffer
from weituan.tracking.services.outbox import outbox_move


class Command(WeituanCommand):
    help = (
        "Store the clicks that stopped processes left in the click spool, and move every committed, "
        "unmoved outbox event to the analytics store (idempotent)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        clicks = write_buffer().flush()
        moved = outbox_move()
        self.stdout.write(f"{clicks} spooled clicks stored, {moved} outbox events stored")
