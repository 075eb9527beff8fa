"""The outbox: business events written in the caller's transaction, moved to the store after commit."""

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field
from django.utils import timezone

from weituan.core.tasks import enqueue_on_commit
from weituan.tracking.models import OutboxEvent
from weituan.tracking.rows import event_row, new_event_id
from weituan.tracking.services.ingest import events_store

_move_lock = threading.Lock()
MOVE_BATCH = 2000


def outbox_event_write(
    *,
    event: str,
    user_id: int | None,
    visitor_id: str = "",
    ts: datetime | None = None,
    event_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> str:
    """Add the event to the outbox inside the current transaction and schedule its move after commit.

    If the transaction rolls back, the event disappears with the business change it described.
    """
    event_id = event_id or new_event_id()
    now = timezone.now()
    values = {
        "event_id": event_id,
        "event": event,
        "ts": ts or now,
        "visitor_id": visitor_id or (f"u:{user_id}" if user_id else ""),
        "user_id": user_id,
        "payload": payload or {},
        "created_at": now,  # auto_now_add
        "moved_at": None,
    }
    db = router.db_for_write(OutboxEvent)
    _row_insert(values, db)
    from weituan.tracking.tasks import outbox_move_task

    if transaction.get_connection(db).in_atomic_block:
        enqueue_on_commit(outbox_move_task)
    else:
        outbox_move_task.enqueue()
    return event_id


def outbox_events_write(events: Sequence[tuple[str, int | None, dict[str, Any]]]) -> None:
    """`outbox_event_write` for several events at once, each (event, user id, payload), stamped now: one
    statement whatever their number (PostgreSQL), for a caller that writes many changes in one
    transaction (the checkout's combined orders)."""
    if not events:
        return
    db = router.db_for_write(OutboxEvent)
    connection = connections[db]
    if connection.vendor != "postgresql":
        for event, user_id, payload in events:
            outbox_event_write(event=event, user_id=user_id, payload=payload)
        return
    found = _many_sql.get(db)
    if found is None:
        meta = OutboxEvent._meta
        quote = connection.ops.quote_name
        by_name = {field.name: field for field in meta.concrete_fields}
        columns = ", ".join(quote(str(by_name[name].column)) for name in _MANY_COLUMNS)
        found = _many_sql[db] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}, ts, created_at, moved_at)"  # noqa: S608
            " SELECT e.event_id, e.event, e.visitor_id, e.user_id, e.payload::jsonb, %s, %s, NULL"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[])"
            " AS e (event_id, event, visitor_id, user_id, payload)"
        )
    now = timezone.now()
    field = OutboxEvent._meta.get_field("payload")
    encoder = getattr(field, "encoder", None)
    columns_of: list[list[Any]] = [[], [], [], [], []]
    for event, user_id, payload in events:
        row = (new_event_id(), event, f"u:{user_id}" if user_id else "", user_id,
               json.dumps(payload or {}, cls=encoder))  # fmt: skip
        for column, value in zip(columns_of, row, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(found, [now, now, *columns_of])
    from weituan.tracking.tasks import outbox_move_task

    if connection.in_atomic_block:
        enqueue_on_commit(outbox_move_task)
    else:
        outbox_move_task.enqueue()


_MANY_COLUMNS = ("event_id", "event", "visitor_id", "user_id", "payload")
_many_sql: dict[str, str] = {}
_insert_sql: dict[str, tuple[str, list[Field[Any, Any]]]] = {}


def _row_insert(values: dict[str, Any], db: str) -> None:
    """INSERT the row of `values` (by field name, every field but the key) as the ORM would (each
    field's own database value), by hand and without making a model instance.

    Business events are written inside the hottest transactions (every checkout), where building the
    ORM's INSERT cost more than running it. Nothing is read back (the row's id is never needed), so a
    caller may queue this statement with others and send them to the database together.
    """
    connection = connections[db]
    found = _insert_sql.get(connection.vendor)
    if found is None:
        meta = OutboxEvent._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        marks = ", ".join(["%s"] * len(fields))
        found = _insert_sql[connection.vendor] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({marks})",  # noqa: S608
            fields,
        )
    sql, fields = found
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _row_of(item: OutboxEvent) -> dict[str, Any]:
    payload = dict(item.payload or {})
    fields = {
        key: payload.pop(key)
        for key in ("url", "referrer", "order_id", "revenue", "currency", "deal_id", "post_id", "link_id")
        if key in payload
    }
    ts = item.ts if item.ts.tzinfo else item.ts.replace(tzinfo=UTC)
    return event_row(
        item.event,
        ts.astimezone(UTC),
        item.visitor_id or f"u:{item.user_id or 0}",
        event_id=item.event_id,
        user_id=item.user_id or 0,
        origin="server",
        props=json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str),
        **fields,
    )


def outbox_move(*, limit: int = 100_000) -> int:
    """Move unmoved outbox rows to the store; returns how many were newly stored.

    Safe to run again after a crash at any point: rows already in the store (same event_id) are
    skipped, and a row is stamped moved only after the store has it.
    """
    moved = 0
    with _move_lock:
        while moved < limit:
            batch = list(OutboxEvent.objects.filter(moved_at__isnull=True).order_by("id")[:MOVE_BATCH])
            if not batch:
                break
            outcome = events_store([_row_of(item) for item in batch], check_existing=True)
            OutboxEvent.objects.filter(pk__in=[item.pk for item in batch], moved_at__isnull=True).update(
                moved_at=timezone.now()
            )
            moved += outcome.stored
            if len(batch) < MOVE_BATCH:
                break
    return moved
