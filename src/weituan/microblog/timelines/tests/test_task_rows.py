"""The fan-out task's row written in the caller's transaction (`enqueue_with_transaction`): the first row
of a task is made as the database backend's `enqueue` makes it, the rows after it from that one's
prepared values; each is the row the backend would have written, and what listens to `pre_save`,
`post_save` and `task_enqueued` is served as `enqueue` serves it."""

import logging
from typing import Any

import pytest
from django.db import transaction
from django.db.models import signals
from django.tasks.signals import task_enqueued
from django_tasks_db.models import DBTaskResult

from weituan.microblog.timelines import tasks
from weituan.microblog.timelines.tasks import enqueue_with_transaction, fanout_deliver_task

pytestmark = pytest.mark.django_db

# What differs between two rows of one task by design; every other column must be equal.
OWN_COLUMNS = {"id", "args_kwargs", "enqueued_at"}


@pytest.fixture(autouse=True)
def _database_tasks(settings: Any) -> None:
    # A new backend for each test (the setting's change makes one), so its first row is made the
    # ordinary way.
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def _templates() -> dict[Any, Any]:
    return fanout_deliver_task.get_backend().__dict__.get(tasks._TEMPLATES_ATTRIBUTE, {})


def _columns(row: DBTaskResult) -> dict[str, Any]:
    return {field.attname: getattr(row, field.attname) for field in DBTaskResult._meta.concrete_fields}


def _enqueue(*post_ids: int) -> list[DBTaskResult]:
    with transaction.atomic():
        for post_id in post_ids:
            enqueue_with_transaction(fanout_deliver_task, post_id=post_id)
    rows = {row.args_kwargs["kwargs"]["post_id"]: row for row in DBTaskResult.objects.all()}
    return [rows[post_id] for post_id in post_ids]


def test_rows_after_the_first_are_the_rows_the_backend_writes(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        backends_own = fanout_deliver_task.enqueue(post_id=1)  # the backend's own enqueue
    first, second, third = _enqueue(2, 3, 4)
    assert _templates(), "the rows after the first are made from a template"
    expected = DBTaskResult.objects.get(id=backends_own.id)
    for row in (first, second, third):
        columns, reference = _columns(row), _columns(expected)
        assert {name: columns[name] for name in reference if name not in OWN_COLUMNS} == {
            name: reference[name] for name in reference if name not in OWN_COLUMNS
        }
    assert [row.args_kwargs for row in (first, second, third)] == [
        {"args": [], "kwargs": {"post_id": post_id}} for post_id in (2, 3, 4)
    ]
    assert len({row.id for row in (expected, first, second, third)}) == 4
    assert expected.enqueued_at <= first.enqueued_at <= second.enqueued_at <= third.enqueued_at
    # Each is a task the worker runs as any other: its result reads back whole.
    assert third.task_result.task.module_path == fanout_deliver_task.module_path
    assert third.task_result.kwargs == {"post_id": 4}


def test_a_pre_save_receiver_connected_before_the_first_row_sees_every_row() -> None:
    seen: list[Any] = []

    def receiver(sender: Any, instance: DBTaskResult, **kwargs: Any) -> None:
        post_id = instance.args_kwargs["kwargs"]["post_id"]
        seen.append(post_id)
        instance.priority = post_id  # a value of the row's own, which no template could give

    signals.pre_save.connect(receiver)  # for every model's rows
    try:
        rows = _enqueue(1, 2, 3)
    finally:
        signals.pre_save.disconnect(receiver)
    assert seen == [1, 2, 3]
    assert [row.priority for row in rows] == [1, 2, 3]


def test_a_pre_save_receiver_connected_later_sees_every_row() -> None:
    _enqueue(1)  # the template is made
    seen: list[Any] = []

    def receiver(sender: Any, instance: DBTaskResult, **kwargs: Any) -> None:
        seen.append(instance.args_kwargs["kwargs"]["post_id"])
        instance.priority = 7

    signals.pre_save.connect(receiver, sender=DBTaskResult)
    try:
        (row,) = _enqueue(2)
    finally:
        signals.pre_save.disconnect(receiver, sender=DBTaskResult)
    assert seen == [2]
    assert row.priority == 7  # written as the receiver left it, not from the template
    (after,) = _enqueue(3)
    assert after.priority == fanout_deliver_task.priority


def test_post_save_and_task_enqueued_receivers_get_each_row(django_capture_on_commit_callbacks: Any) -> None:
    _enqueue(1)
    saved: list[tuple[Any, bool, bool]] = []
    announced: list[Any] = []

    def on_save(sender: Any, instance: DBTaskResult, created: bool, **kwargs: Any) -> None:
        saved.append((instance.args_kwargs["kwargs"]["post_id"], created, instance._state.adding))

    def on_enqueue(sender: Any, task_result: Any, **kwargs: Any) -> None:
        announced.append((task_result.kwargs["post_id"], str(task_result.id)))

    signals.post_save.connect(on_save, sender=DBTaskResult)
    task_enqueued.connect(on_enqueue)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            rows = _enqueue(2, 3)
    finally:
        signals.post_save.disconnect(on_save, sender=DBTaskResult)
        task_enqueued.disconnect(on_enqueue)
    assert saved == [(2, True, False), (3, True, False)]
    assert announced == [(2, str(rows[0].id)), (3, str(rows[1].id))]


def test_an_enqueue_nobody_hears_is_not_announced(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Only Django's own receiver listens, and it logs at DEBUG, which its logger does not take here.
    caplog.set_level(logging.INFO, logger="django.tasks")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _enqueue(1, 2)
    assert callbacks == []


def test_an_enqueue_is_announced_while_its_debug_line_is_logged(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="django.tasks")
    with django_capture_on_commit_callbacks(execute=True):
        first, second = _enqueue(1, 2)
    logged = [record.getMessage() for record in caplog.records if record.name == "django.tasks"]
    assert [line for line in logged if "enqueued" in line] == [
        f"Task id={row.id} path={fanout_deliver_task.module_path} enqueued backend=default"
        for row in (first, second)
    ]
