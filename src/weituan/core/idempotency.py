"""Idempotency-Key for write endpoints: a retry replays the first response instead of writing twice.

- same key, same request: the first response (status and body) is returned again;
- same key, different request: refused with 422 `idempotency_mismatch`, whichever endpoint each went
  to (a user's native API keys share one scope, `user_scope`; the orders that keep their key on the
  order itself check this table, and `deals.api._once` checks the keys that orders, refunds and the
  changes of `deals.services.write_keys` keep);
- the same key sent twice at once: the first to store its record runs, the other gets 409
  `idempotency_in_progress` (or the replay, if the first has finished by then).

A request that fails with a refusal stores nothing, so it can be retried with the same key once the
cause is fixed (a topped-up wallet, say). A request whose work outlives its failed answer keeps its key
on the row it wrote instead, and its retry is run again and finds that row: a refund asked for while
the provider was unreachable (503 `refund_pending`) is completed later on its own, and the same
request sent again once it has is answered with the refunded order (`deals.services.refunds`). A record
left unfinished by a crashed process is taken over after `STALE_AFTER`, and its request run again: a
write that must not run again once it has taken effect (a cancel, a switch to the solo price, a team
merge, a voucher's redemption, a deal's publication) keeps its key in the very transaction of its
change (`deals.services.write_keys`), and its retry is answered from that row however its first answer
was lost.

Records are kept `IDEMPOTENCY_KEEP_HOURS` (24 h unless configured, as payment APIs keep their keys) and
then deleted by a periodic sweep (`idempotency_records_prune_task`): a retry within that time is
answered from its record, a request sent again after it is a new request. Keys kept on the rows they
wrote (orders, refunds, the changes of `deals.services.write_keys`) live as long as those rows.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.tasks import task
from django.utils import timezone

from weituan.core.errors import DATABASE_OUTAGES, Conflict, ValidationFailed, lost_connections_closed
from weituan.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255
STALE_AFTER = timedelta(seconds=60)

Response = tuple[int, Any]


USER_SCOPE_PREFIX = "user:"


def user_scope(user_id: int) -> str:
    """The scope of a user's keys on the native API: one key names one request of theirs."""
    return f"{USER_SCOPE_PREFIX}{user_id}"


def idempotency_mismatch() -> ValidationFailed:
    """The refusal of a key already used for a different request."""
    return ValidationFailed(
        "This Idempotency-Key was already used for a different request", code="idempotency_mismatch"
    )


def request_fingerprint(*parts: Any) -> str:
    """A stable hash of what the request asked for (method, path, parsed body...)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, fingerprint: str) -> Response | None:
    """The stored response; None if the record is stale and this caller took it over."""
    if record.request_hash != fingerprint:
        raise idempotency_mismatch()
    if record.status_code is not None:
        return record.status_code, record.response
    stale_before = timezone.now() - STALE_AFTER
    taken = IdempotencyRecord.objects.filter(
        id=record.id, status_code__isnull=True, created_at__lte=stale_before
    ).update(created_at=timezone.now())
    if taken:
        return None
    raise Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly",
        code="idempotency_in_progress",
    )


def _record_forget(record_id: int) -> None:
    """Forget the key of a request whose work failed, so that its retry does the work. The failure may
    have been its database connection, ended mid-request: that connection is replaced first, or every
    retry in the next `STALE_AFTER` would be told the request is still being processed. If the
    database cannot be reached at all the record stays, and a retry takes it over once it is stale."""
    lost_connections_closed()
    try:
        IdempotencyRecord.objects.filter(id=record_id).delete()
    except DATABASE_OUTAGES as exc:
        logger.warning("idempotency record %s of a failed request left until stale: %s", record_id, exc)


def idempotent_call(
    *, scope: str, key: str | None, fingerprint: str, run: Callable[[], Response]
) -> Response:
    """Run `run()` once per (scope, key); `run` returns (status, JSON-able body)."""
    if not key:
        return run()
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key is longer than {MAX_KEY_LENGTH}", code="invalid_idempotency_key"
        )
    record = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
    if record is None:
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(scope=scope, key=key, request_hash=fingerprint)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(scope=scope, key=key)
            replay = _replay(record, fingerprint)
            if replay is not None:
                return replay
    else:
        replay = _replay(record, fingerprint)
        if replay is not None:
            return replay
    try:
        status, body = run()
    except BaseException:
        _record_forget(record.id)
        raise
    IdempotencyRecord.objects.filter(id=record.id).update(status_code=status, response=body)
    return status, body


PRUNE_BATCH = 5000


def idempotency_records_prune(*, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete the records older than `IDEMPOTENCY_KEEP_HOURS` (finished or abandoned alike: one left
    unfinished that long was taken over long ago, or never will be), `batch` at a time so no
    statement holds the table long; returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS)
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff)
            .order_by("created_at")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(id__in=ids).delete()[0]
        if len(ids) < batch:
            return deleted


@task()
def idempotency_records_prune_task() -> int:
    """Periodic: forget the Idempotency-Keys older than the time they are kept."""
    return idempotency_records_prune()
