"""Idempotency-Keys are remembered for `IDEMPOTENCY_KEEP_HOURS`, then forgotten by the periodic sweep."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django.utils.module_loading import import_string

from weituan.core.idempotency import idempotency_records_prune
from weituan.core.models import IdempotencyRecord
from weituan.microblog.models import FollowList

pytestmark = pytest.mark.django_db

SWEEP = "weituan.core.idempotency.idempotency_records_prune_task"


def _age(key: str, hours: float) -> None:
    IdempotencyRecord.objects.filter(key=key).update(created_at=timezone.now() - timedelta(hours=hours))


def test_a_retry_within_the_day_replays_and_a_request_after_it_is_new(api_as: Any, shopper: Any) -> None:
    client = api_as(shopper)
    first = client.post("/api/v1/lists", {"title": "一次"}, headers={"Idempotency-Key": "kept"})
    assert first.status_code == 200, first.content
    _age("kept", 23.5)
    assert idempotency_records_prune() == 0
    again = client.post("/api/v1/lists", {"title": "一次"}, headers={"Idempotency-Key": "kept"})
    assert again.json() == first.json()
    assert FollowList.objects.count() == 1

    _age("kept", 24.5)
    assert idempotency_records_prune() == 1
    later = client.post("/api/v1/lists", {"title": "一次"}, headers={"Idempotency-Key": "kept"})
    assert later.status_code == 200 and later.json()["id"] != first.json()["id"]
    assert FollowList.objects.count() == 2


def test_the_sweep_deletes_only_old_records_in_batches_and_is_periodic(settings: Any) -> None:
    settings.IDEMPOTENCY_KEEP_HOURS = 2
    now = timezone.now()
    IdempotencyRecord.objects.bulk_create(
        [
            IdempotencyRecord(scope="user:1", key=f"old{i}", request_hash="h", status_code=200)
            for i in range(7)
        ]
        + [IdempotencyRecord(scope="user:1", key="unfinished", request_hash="h")]
        + [
            IdempotencyRecord(scope="user:1", key=f"new{i}", request_hash="h", status_code=200)
            for i in range(3)
        ]
    )
    IdempotencyRecord.objects.exclude(key__startswith="new").update(created_at=now - timedelta(hours=3))
    assert idempotency_records_prune(batch=3) == 8  # 3 + 3 + 2
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new0", "new1", "new2"]
    assert idempotency_records_prune(now=now + timedelta(hours=2, minutes=1)) == 3
    assert SWEEP in [path for path, _ in settings.PERIODIC_TASKS]
    assert import_string(SWEEP).call() == 0  # what the worker runs: nothing left to forget
