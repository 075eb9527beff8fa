"""Run by test_crash_recovery in a process of its own: sets up a deal, then dies by SIGKILL mid-settlement.

`python crash_worker.py crash tip|void` kills itself inside the third capture (or void) transaction, after
the order's state UPDATE and before its ledger posting; `crash publish` kills itself once a deal's
publication has committed, before its announcement is posted; `python crash_worker.py recover
tip|void|publish` runs the sweep (what a restarted worker does) and prints the outcome as JSON.
"""

import json
import os
import signal
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from weituan.core.testing import make_user  # noqa: E402
from weituan.deals.models import Deal, Order, Posting  # noqa: E402
from weituan.deals.queries import ledger_report  # noqa: E402
from weituan.deals.services import ledger  # noqa: E402
from weituan.deals.services.deals import (  # noqa: E402
    DealInput,
    deal_create,
    deal_end,
    deal_publish,
    deal_tip_check,
    deals_sweep,
)
from weituan.deals.services.orders import order_place  # noqa: E402
from weituan.deals.services.wallet import wallet_top_up  # noqa: E402
from weituan.microblog.models import Post  # noqa: E402


def setup(phase: str) -> Deal:
    merchant = make_user(f"crash_shop_{phase}", merchant=True)
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title=f"crash {phase}",
            list_price=2000,
            deal_price=1000,
            max_quantity=20,
            tipping_point=20,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
        ),
    )
    deal_publish(deal_id=deal.id, by=merchant)
    for index in range(6):
        buyer = make_user(f"crash_{phase}_{index}")
        wallet_top_up(user=buyer, amount=5000)
        order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    return deal


def die_on_third(kind: str) -> None:
    real = ledger.posting_write
    seen = {"n": 0}

    def posting_write(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["kind"] == kind:
            seen["n"] += 1
            if seen["n"] == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(**kwargs)

    ledger.posting_write = posting_write  # type: ignore[assignment]


def publish_and_die() -> None:
    """Publish a draft, and die as the announcement is about to be posted."""
    from weituan.deals import integrations

    merchant = make_user("crash_shop_publish", merchant=True)
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title="crash publish",
            list_price=2000,
            deal_price=1000,
            max_quantity=20,
            tipping_point=5,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
        ),
    )

    def killed(**kwargs):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGKILL)

    integrations.deal_card_post_create = killed  # type: ignore[assignment]
    deal_publish(deal_id=deal.id, by=merchant)


def publish_recovered() -> None:
    deal = Deal.objects.get(title="crash publish")
    before = (deal.state, deal.post_id)
    counts = [deals_sweep()["announced"], deals_sweep()["announced"]]
    deal.refresh_from_db()
    posts = Post.objects.filter(deal_id=deal.id)
    print(
        json.dumps(
            {
                "before": before,
                "after": (deal.state, deal.post_id),
                "announced": counts,
                "posts": list(posts.values_list("id", flat=True)),
                "author": list(posts.values_list("author_id", flat=True)) == [deal.merchant_id],
            }
        )
    )


def main() -> None:
    mode = sys.argv[1]
    if mode == "crash":
        if os.environ.get("CRASH_MIGRATE") == "1":
            call_command("migrate", verbosity=0)
        if sys.argv[2] == "publish":
            publish_and_die()
            print("not killed")
            return
        deal = setup(sys.argv[2])
        if sys.argv[2] == "tip":
            die_on_third("capture")
            Deal.objects.filter(id=deal.id).update(tipping_point=6)
            deal_tip_check(deal_id=deal.id)
        else:
            die_on_third("void")
            Deal.objects.filter(id=deal.id).update(
                starts_at=timezone.now() - timedelta(days=2), ends_at=timezone.now() - timedelta(seconds=1)
            )
            deal_end(deal_id=deal.id)
        print("not killed")
        return
    if sys.argv[2] == "publish":
        publish_recovered()
        return
    deal = Deal.objects.get(title=f"crash {sys.argv[2]}")
    orders = Order.objects.filter(deal=deal).order_by("id")
    before = list(orders.values_list("state", flat=True))
    deals_sweep()
    report = ledger_report()
    print(
        json.dumps(
            {
                "before": before,
                "after": list(orders.values_list("state", flat=True)),
                "deal_state": Deal.objects.get(id=deal.id).state,
                "captures": Posting.objects.filter(kind="capture", order__deal=deal).count(),
                "voids": Posting.objects.filter(kind="void", order__deal=deal).count(),
                "ledger_ok": report.ok,
                "problems": report.problems(),
            }
        )
    )


if __name__ == "__main__":
    main()
