from datetime import timedelta

import pytest
from django.utils import timezone

from weituan.core.errors import Conflict, ValidationFailed
from weituan.core.idempotency import idempotent_call, request_fingerprint
from weituan.core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_replay_mismatch_in_progress_and_stale_takeover():
    calls: list[int] = []

    def run() -> tuple[int, dict[str, int]]:
        calls.append(1)
        return 201, {"n": len(calls)}

    fingerprint = request_fingerprint("POST", "/x", {"a": 1})
    assert idempotent_call(scope="u:1", key="k", fingerprint=fingerprint, run=run) == (201, {"n": 1})
    assert idempotent_call(scope="u:1", key="k", fingerprint=fingerprint, run=run) == (201, {"n": 1})
    assert len(calls) == 1
    with pytest.raises(ValidationFailed) as mismatch:
        idempotent_call(
            scope="u:1", key="k", fingerprint=request_fingerprint("POST", "/x", {"a": 2}), run=run
        )
    assert (mismatch.value.code, mismatch.value.status) == ("idempotency_mismatch", 422)
    # Another user's identical key is a different request.
    assert idempotent_call(scope="u:2", key="k", fingerprint=fingerprint, run=run) == (201, {"n": 2})
    # A record left unfinished (a crashed process) blocks briefly, then is taken over.
    IdempotencyRecord.objects.create(scope="u:1", key="busy", request_hash=fingerprint)
    with pytest.raises(Conflict) as busy:
        idempotent_call(scope="u:1", key="busy", fingerprint=fingerprint, run=run)
    assert busy.value.code == "idempotency_in_progress"
    IdempotencyRecord.objects.filter(key="busy").update(created_at=timezone.now() - timedelta(minutes=5))
    assert idempotent_call(scope="u:1", key="busy", fingerprint=fingerprint, run=run) == (201, {"n": 3})


def test_failure_stores_nothing_so_the_key_can_be_retried():
    def refuse() -> tuple[int, dict[str, int]]:
        raise Conflict("no", code="nope")

    with pytest.raises(Conflict):
        idempotent_call(scope="u:1", key="k", fingerprint="f", run=refuse)
    assert IdempotencyRecord.objects.count() == 0
    assert idempotent_call(scope="u:1", key="k", fingerprint="f", run=lambda: (200, {})) == (200, {})
