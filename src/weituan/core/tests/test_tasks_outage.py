"""A task that meets a store outage is enqueued again for later, attempt after attempt, then fails."""

from typing import Any

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.core.tasks import OUTAGE_RETRY_DELAYS
from weituan.core.worker import make_worker
from weituan.microblog.timelines import home
from weituan.microblog.timelines.tasks import home_timeline_drop_reblogs_task

pytestmark = pytest.mark.django_db(transaction=True)  # the worker commits transactions of its own


def test_a_task_meeting_a_database_outage_runs_again_later_until_its_attempts_are_spent(
    settings: Any, monkeypatch: pytest.MonkeyPatch, shopper: Any, merchant: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    calls: list[int] = []

    def away(*, user_id: int, author_id: int) -> None:
        calls.append(user_id)
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(home, "home_timeline_drop_reblogs", away)
    home_timeline_drop_reblogs_task.enqueue(user_id=shopper.pk, author_id=merchant.pk)
    runs = DBTaskResult.objects.filter(task_path=home_timeline_drop_reblogs_task.module_path)

    for attempt, delay in enumerate(OUTAGE_RETRY_DELAYS, start=1):
        before = timezone.now()
        make_worker(batch=True).run()
        waiting = runs.get(status="READY")
        assert waiting.args_kwargs["kwargs"] == {
            "user_id": shopper.pk,
            "author_id": merchant.pk,
            "attempt": attempt,
        }
        assert waiting.run_after is not None and waiting.run_after >= before + delay
        runs.filter(pk=waiting.pk).update(run_after=timezone.now())

    make_worker(batch=True).run()

    assert len(calls) == len(OUTAGE_RETRY_DELAYS) + 1
    assert sorted(runs.values_list("status", flat=True)) == ["FAILED"] + ["SUCCESSFUL"] * len(
        OUTAGE_RETRY_DELAYS
    )
    assert not runs.filter(status="READY").exists()
