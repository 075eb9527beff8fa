"""`weituan ledger check`: prove the ledger sums to zero, its derived balances and references agree with its
rows, and no hold is left open on a closed deal."""

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from weituan.core.commands import WeituanCommand
from weituan.deals.queries import ledger_report


class Command(WeituanCommand):
    help = "Check the payments ledger: `ledger check [--json]`."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser(
            "check",
            help="every posting balances, the ledger sums to 0, running balances and references hold,"
            " no hold left open",
        )
        check.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_report()
        if options.get("json"):
            self.stdout.write(
                json.dumps(
                    {
                        "ok": report.ok,
                        "totals": report.totals,
                        "postings": report.postings,
                        "unbalanced_postings": report.unbalanced_postings,
                        "open_holds_on_ended_deals": report.open_holds_on_ended_deals,
                        "running_balance_mismatches": report.running_balance_mismatches,
                        "dangling_references": report.dangling_references,
                        "merchants_below_zero": report.merchants_below_zero,
                        "problems": report.problems(),
                    }
                )
            )
        if not report.ok:
            raise CommandError("ledger check failed: " + "; ".join(report.problems()))
        if not options.get("json"):
            sums = ", ".join(f"{c} {t}" for c, t in sorted(report.totals.items())) or "no entries"
            self.stdout.write(
                f"ledger ok: {report.postings} postings, sums {sums}, running balances and references agree,"
                " no open holds on closed deals"
            )
