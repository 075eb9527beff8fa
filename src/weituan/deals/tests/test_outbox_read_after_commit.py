"""A checkout batch that sends its own COMMIT reads the outbox mover's status after it in the same
round trip: no read of its own after the commit, and never an event left waiting for a run that has
already started (PostgreSQL, the tasks kept in the database as in a server)."""

import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.core import tasks
from weituan.core.tasks import enqueue_on_commit
from weituan.core.testing import make_user
from weituan.core.worker import make_worker
from weituan.deals.services.orders import order_place
from weituan.deals.services.rows import StatementBatch
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.tracking.models import OutboxEvent
from weituan.tracking.services.outbox import outbox_event_write
from weituan.tracking.tasks import outbox_move_task

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
STATUS_READ = "SELECT status FROM"


@pytest.fixture
def database_tasks(settings: Any, monkeypatch: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.REDIS_URL = ""
    monkeypatch.setattr(tasks, "_last_enqueued", {})


def _window_over() -> DBTaskResult:
    """The mover run this process enqueued last, its gathering window over (and due for a worker)."""
    path = outbox_move_task.module_path
    run = DBTaskResult.objects.get(status="READY", task_path=path)
    tasks._last_enqueued[path] = (tasks._last_enqueued[path][0], time.monotonic() - 1)
    DBTaskResult.objects.filter(id=run.id).update(run_after=timezone.now() - timedelta(seconds=1))
    return run


def _first_run() -> DBTaskResult:
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
    return _window_over()


def _event_batch(name: str) -> StatementBatch:
    """A batch of one outbox event (queued through the batch, as a checkout's is), not yet sent."""
    with StatementBatch(prepared=True) as batch:
        outbox_event_write(event="order_placed", user_id=None, payload={"name": name})
    batch.add("SELECT %s::int", [1])
    return batch


def _wire(tmp_path: Any) -> tuple[Any, Any]:
    trace = tmp_path / "wire.txt"
    wire = trace.open("w")
    pgconn = connection.connection.pgconn
    pgconn.trace(wire.fileno())
    pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
    return trace, wire


def test_a_waiting_run_is_read_after_the_commit_in_the_batch_round_trip(database_tasks, tmp_path) -> None:
    run = _first_run()
    with transaction.atomic():  # the batch's statements are prepared on this connection first
        _event_batch("warm").send(commit=True)
    trace, wire = _wire(tmp_path)
    try:
        with CaptureQueriesContext(connection) as captured, transaction.atomic():
            batch = _event_batch("a")
            batch.send(commit=True)
    finally:
        connection.connection.pgconn.untrace()
        wire.close()
    sent = [line for line in trace.read_text().splitlines() if line.startswith("F")]
    # One query: the statements, the COMMIT, then the read; nothing after it.
    assert len(sent) == 1 and f"; COMMIT; {STATUS_READ} " in sent[0] and run.id.hex in sent[0]
    statements = [q["sql"] for q in captured.captured_queries]
    # Logged with the batch's statements; none after the block's COMMIT (the hook asked nothing more).
    assert [q for q in statements if q.startswith(STATUS_READ)] == [statements[-2]]
    assert run.id.hex in statements[-2] and statements[-1] == "COMMIT"
    # The run had not started after the commit: it will move this event, and no other run is asked for.
    assert list(DBTaskResult.objects.values_list("id", "status")) == [(run.id, "READY")]


def test_a_run_started_before_the_commit_is_seen_so_and_a_new_run_enqueued(database_tasks) -> None:
    run = _first_run()
    DBTaskResult.objects.filter(id=run.id).update(status="RUNNING")  # a worker took it already
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        _event_batch("b").send(commit=True)
    reads = [q for q in captured.captured_queries if q["sql"].startswith(STATUS_READ)]
    assert len(reads) == 1  # the one in the batch; the hook asked no more
    waiting = DBTaskResult.objects.get(status="READY")
    assert waiting.id != run.id and waiting.run_after > timezone.now()


def test_a_worker_starting_the_run_after_the_commit_moves_the_event(database_tasks) -> None:
    """The read says the run had not started after the commit; a worker then takes it before the
    hook runs: the run sees the committed event and moves it, so no new run is needed."""
    run = _first_run()
    with transaction.atomic():
        batch = _event_batch("c")
        batch.send(commit=True)
        assert batch.committed

        def work() -> None:
            try:
                make_worker(batch=True).run()
            finally:
                connections.close_all()

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert DBTaskResult.objects.get(id=run.id).status == "SUCCESSFUL"
    event = OutboxEvent.objects.get(payload__name="c")
    assert event.moved_at is not None
    assert DBTaskResult.objects.count() == 1


def test_within_the_window_the_batch_reads_nothing(database_tasks) -> None:
    with transaction.atomic():
        enqueue_on_commit(outbox_move_task)
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        _event_batch("d").send(commit=True)
    assert not [q for q in captured.captured_queries if "django_tasks_database" in q["sql"]]
    assert DBTaskResult.objects.count() == 1


def test_a_checkout_reads_the_mover_status_with_its_commit(database_tasks, merchant) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    buyer = make_user("probe_buyer")
    wallet_top_up(user=buyer, amount=50_000)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1, client_key="p-1")  # makes the held account
    run = _window_over()
    with CaptureQueriesContext(connection) as captured:
        order = order_place(deal_id=deal.id, buyer=buyer, quantity=1, client_key="p-2")
    statements = [q["sql"] for q in captured.captured_queries]
    # The read went with the batch: nothing was read after the block's COMMIT.
    assert [q for q in statements if q.startswith(STATUS_READ)] == [statements[-2]]
    assert run.id.hex in statements[-2] and statements[-1] == "COMMIT"
    moves = DBTaskResult.objects.filter(task_path=outbox_move_task.module_path)
    assert list(moves.values_list("id", "status")) == [(run.id, "READY")]
    assert OutboxEvent.objects.filter(payload__order_id=str(order.id), moved_at__isnull=True).count() == 1
