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


def business_change(ident: str = event_id) -> None:
    ShortLink.objects.create(code="Bz" + ident[-14:], target_url="https://x.example/", channel="push",
                             dedup_key=ident)  # fmt: skip
    facade.event_emit(event="order_placed", user_id=7, event_id=ident, order_id="O-1", revenue=1200)


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
elif mode == "die_in_commit":
    # Killed inside the commit of the business transaction, at the point named by `when`:
    #   statement: SQLite has begun executing COMMIT and written nothing yet -> the transaction is lost;
    #              PostgreSQL has been sent COMMIT, the process dies before the answer -> the server
    #              commits, and the move to the analytics store was never scheduled;
    #   returned: the COMMIT is done, Django has not yet run its on-commit hooks -> it is kept,
    #             but the move to the analytics store was never scheduled.
    from django.db import connection

    when = sys.argv[3]
    connection.ensure_connection()

    def kill_at_commit_statement(statement: str) -> None:
        if statement.strip().upper().startswith("COMMIT"):
            os.kill(os.getpid(), signal.SIGKILL)

    original_commit = connection._commit  # type: ignore[attr-defined]

    def commit_then_die() -> None:
        original_commit()
        os.kill(os.getpid(), signal.SIGKILL)

    def send_commit_then_die() -> None:
        wire = connection.connection.pgconn
        wire.send_query(b"COMMIT")
        while wire.flush():  # until the whole message is in the kernel's socket buffer
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    with transaction.atomic():
        business_change()
        if when == "returned":
            connection._commit = commit_then_die  # type: ignore[attr-defined]
        elif connection.vendor == "postgresql":
            connection._commit = send_commit_then_die  # type: ignore[attr-defined]
        else:
            connection.connection.set_trace_callback(kill_at_commit_statement)
    print("SURVIVED", flush=True)  # never reached: the commit above kills the process
elif mode == "commit_loop":
    # Business transactions back to back until the parent kills the process at a moment of its choosing,
    # often in the middle of a commit.
    print("LOOPING", flush=True)
    for number in range(1_000_000):
        with transaction.atomic():
            business_change(f"{event_id[:20]}{number:012d}")
elif mode == "die_after_store":
    from weituan.tracking.services import outbox

    original = outbox.events_store

    def store_then_die(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # stored, but the outbox row is never stamped moved

    outbox.events_store = store_then_die
    outbox.outbox_move()
elif mode == "recover_all":
    # Every business row committed by `commit_loop` must have its event stored exactly once, and no
    # event may exist for a transaction that never committed.
    from weituan.tracking.services.outbox import outbox_move
    from weituan.tracking.store import analytics_store

    outbox_move()
    outbox_move()
    committed = set(
        ShortLink.objects.filter(dedup_key__startswith=event_id[:20]).values_list("dedup_key", flat=True)
    )
    stored = analytics_store().query(
        "SELECT event_id, count() AS copies FROM events WHERE startsWith(event_id, {p:String}) GROUP BY event_id",
        {"p": event_id[:20]},
    )
    copies = {row["event_id"]: int(row["copies"]) for row in stored}
    print(
        json.dumps(
            {
                "committed": len(committed),
                "stored_once": sum(1 for key in committed if copies.get(key) == 1),
                "stored_twice": sum(1 for n in copies.values() if n > 1),
                "orphans": len(set(copies) - committed),
                "unmoved": OutboxEvent.objects.filter(moved_at__isnull=True).count(),
            }
        ),
        flush=True,
    )
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
