"""`weituan deals sweep`: run every deal transition that is due (for cron, or after an outage)."""

import json
from typing import Any

from django.core.management.base import CommandParser

from weituan.core.commands import WeituanCommand
from weituan.deals.services.deals import deals_sweep


class Command(WeituanCommand):
    help = "Deal upkeep: `deals sweep` starts, tips, ends and settles whatever is due."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser(
            "sweep", help="run every due transition now; safe to run at any time, any number of times"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(deals_sweep()))
