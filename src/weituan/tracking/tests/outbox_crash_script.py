# ruff: noqa: E402 - Django must be set up before the models are imported
"""Run in a subprocess by test_outbox: commit (or not) a business row with its outbox event, then die."""

import json
import os
import signal
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "weituan.settings")

import django

django.setup()

from django.core.management import call_command
from django.db import transaction

from weituan.tracking import facade
from weituan.tracking.models import OutboxEvent, ShortLink

mode, event_id = sys.argv[1], sys.argv[2]
call_command("migrate", "tracking", verbosity=0)


def business_change() -> None:
    ShortLink.objects.create(code="Bz" + event_id[:6], target_url="https://x.example/", channel="push",
                             dedup_key=event_id)  # fmt: skip
    facade.event_emit(event="order_placed", user_id=7, event_id=event_id, order_id="O-1", revenue=1200)


if mode == "commit":
    with transaction.atomic():
        business_change()
    print("COMMITTED", flush=True)
    time.sleep(60)  # killed here: after commit, before any move
elif mode == "in_transaction":
    with transaction.atomic():
        business_change()
        print("INSIDE", flush=True)
        time.sleep(60)  # killed here: the transaction never commits
elif mode == "die_after_store":
    from weituan.tracking.services import outbox

    original = outbox.events_store

    def store_then_die(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # stored, but the outbox row is never stamped moved

    outbox.events_store = store_then_die
    outbox.outbox_move()
elif mode == "recover":
    from weituan.tracking.services.outbox import outbox_move
    from weituan.tracking.store import analytics_store

    outbox_move()
    outbox_move()  # a second recovery run must change nothing
    copies = analytics_store().scalar(
        "SELECT count() FROM events WHERE event_id = {e:String}", {"e": event_id}
    )
    print(
        json.dumps(
            {
                "copies": int(copies or 0),
                "outbox": OutboxEvent.objects.filter(event_id=event_id).count(),
                "unmoved": OutboxEvent.objects.filter(moved_at__isnull=True).count(),
                "business": ShortLink.objects.filter(dedup_key=event_id).count(),
            }
        ),
        flush=True,
    )
