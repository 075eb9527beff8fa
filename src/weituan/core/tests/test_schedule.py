import pytest

from weituan.core.schedule import periodic_tick


@pytest.mark.django_db
def test_periodic_tasks_are_enqueued_at_their_intervals(settings):
    settings.PERIODIC_TASKS = [
        ("weituan.deals.tasks.deals_sweep_task", 60),
        ("weituan.tracking.tasks.outbox_move_task", 15),
    ]
    due: dict[str, float] = {}
    assert periodic_tick(due, 1000.0) == [
        "weituan.deals.tasks.deals_sweep_task",
        "weituan.tracking.tasks.outbox_move_task",
    ]
    assert periodic_tick(due, 1001.0) == []
    assert periodic_tick(due, 1015.0) == ["weituan.tracking.tasks.outbox_move_task"]
    assert periodic_tick(due, 1060.0) == [
        "weituan.deals.tasks.deals_sweep_task",
        "weituan.tracking.tasks.outbox_move_task",
    ]


@pytest.mark.django_db
def test_a_broken_periodic_task_does_not_stop_the_others(settings):
    settings.PERIODIC_TASKS = [
        ("weituan.no_such_module.task", 10),
        ("weituan.tracking.tasks.outbox_move_task", 10),
    ]
    due: dict[str, float] = {}
    assert periodic_tick(due, 0.0) == ["weituan.tracking.tasks.outbox_move_task"]
    assert due["weituan.no_such_module.task"] == 10.0  # retried at the next interval, not every second
