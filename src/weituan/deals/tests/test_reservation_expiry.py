"""A reservation whose payment never completed (a hosted-gateway order still pending) expires at its time:
by the deal sweep, by its own scheduled task, and by a sweep run for a later time. Its units and the
buyer's quota come back."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from weituan.core import tasks as core_tasks
from weituan.core.testing import make_user
from weituan.deals import tasks
from weituan.deals.errors import SoldOut
from weituan.deals.models import (
    Deal,
    DealState,
    FlashBatch,
    Order,
    OrderState,
    Team,
    TeamState,
    UserDealQuota,
)
from weituan.deals.queries import deal_buyers_counted, ledger_report
from weituan.deals.services import orders
from weituan.deals.services.deals import DealInput, deal_create, deal_publish, deal_tip_check, deals_sweep
from weituan.deals.services.gateways import HostedGateway, gateway_register
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db

GATEWAY = "slowcard"


@pytest.fixture(autouse=True)
def _hosted_gateway() -> None:
    # Never called here: every order of these tests stops before asking the provider for its hold.
    gateway_register(
        HostedGateway(name=GATEWAY, base_url="http://127.0.0.1:9", api_key="sk_test", webhook_secret="whsec")
    )


def reserve(monkeypatch: Any, deal: Any, buyer: Any, quantity: int = 1, **extra: Any) -> Order:
    """An order whose process stopped after it committed, before the provider held the payment."""
    monkeypatch.setattr(orders, "order_authorize_remote", lambda *, order_id: False)
    try:
        order = order_place(deal_id=deal.id, buyer=buyer, quantity=quantity, gateway=GATEWAY, **extra)
    finally:
        monkeypatch.undo()
    assert order.state == OrderState.PENDING
    return order


def taken(deal: Any, buyer: Any) -> tuple[int, int, int, int]:
    """(units taken, buyers holding units, buyers counted towards tipping, the buyer's own quota)"""
    deal.refresh_from_db()
    quota = UserDealQuota.objects.get(deal=deal, user=buyer)
    return deal.sold, deal.takers, deal_buyers_counted(deal_id=deal.id), quota.own


def test_the_sweep_expires_a_reservation_past_its_time(shopper, make_live_deal, fund, monkeypatch):
    deal = make_live_deal(max_quantity=2, per_user_limit=2, tipping_point=1)
    before = timezone.now()
    order = reserve(monkeypatch, deal, shopper, quantity=2)
    assert order.reserve_expires_at is not None
    assert timedelta(minutes=15) <= order.reserve_expires_at - before < timedelta(minutes=16)
    # Reserved, not paid: the units are taken, but the buyer does not count towards tipping.
    assert taken(deal, shopper) == (2, 1, 0, 2)
    assert deal_tip_check(deal_id=deal.id) is False
    friend = make_user("bob")
    fund(friend)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=friend, quantity=1)

    assert deals_sweep()["reservations_expired"] == 0  # not due yet
    assert Order.objects.get(id=order.id).state == OrderState.PENDING

    Order.objects.filter(id=order.id).update(reserve_expires_at=timezone.now() - timedelta(seconds=1))
    assert deals_sweep()["reservations_expired"] == 1
    assert Order.objects.get(id=order.id).state == OrderState.EXPIRED
    assert taken(deal, shopper) == (0, 0, 0, 0)
    assert deals_sweep()["reservations_expired"] == 0  # once

    # Both came back: the two units, and the buyer's own quota of two.
    fund(shopper)
    again = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    assert again.state == OrderState.AUTHORIZED
    assert taken(deal, shopper) == (2, 1, 1, 2)
    assert ledger_report().ok


def test_the_reservations_own_task_expires_it_at_its_time(
    shopper, make_live_deal, monkeypatch, settings, run_on_commit
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    monkeypatch.setattr(core_tasks, "_last_enqueued", {})
    deal = make_live_deal(max_quantity=5, per_user_limit=2, tipping_point=2)
    with run_on_commit():
        order = reserve(monkeypatch, deal, shopper, quantity=2)
    # Kept in the database for a worker, to run when the reservation runs out and not before.
    run = DBTaskResult.objects.get(task_path=tasks.order_reservation_expire_task.module_path)
    assert (run.task_result.args, run.run_after) == ([order.id], order.reserve_expires_at)
    assert not DBTaskResult.objects.ready().filter(id=run.id).exists()
    # Run early (a worker whose clock runs ahead), it leaves the reservation alone.
    assert run.task.call(*run.task_result.args) is False
    assert Order.objects.get(id=order.id).state == OrderState.PENDING
    assert taken(deal, shopper) == (2, 1, 0, 2)

    due = timezone.now() - timedelta(seconds=1)
    Order.objects.filter(id=order.id).update(reserve_expires_at=due)
    DBTaskResult.objects.filter(id=run.id).update(run_after=due)
    run = DBTaskResult.objects.ready().get(id=run.id)
    assert run.task.call(*run.task_result.args) is True
    assert Order.objects.get(id=order.id).state == OrderState.EXPIRED
    assert taken(deal, shopper) == (0, 0, 0, 0)
    assert run.task.call(*run.task_result.args) is False  # a retry moves nothing
    assert ledger_report().ok


def test_a_sweep_run_for_a_later_time_does_what_is_due_by_then(
    merchant, shopper, make_live_deal, fund, monkeypatch
):
    now = timezone.now()
    deal = make_live_deal(max_quantity=10, per_user_limit=2, tipping_point=5, team_price=5_000, team_size=3)
    reservation = reserve(monkeypatch, deal, shopper)
    leader = make_user("lead")
    fund(leader)
    team_order = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start")
    later = make_live_deal(starts_at=now + timedelta(hours=1))
    assert later.state == DealState.SCHEDULED
    flash = deal_publish(
        deal_id=deal_create(
            merchant=merchant,
            data=DealInput(
                title="秒杀",
                list_price=2_000,
                deal_price=1_000,
                max_quantity=4,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(days=2),
                flash_batches=((now - timedelta(seconds=1), 2), (now + timedelta(hours=2), 2)),
            ),
        ).id,
        by=merchant,
    )
    assert flash.released == 2

    # Everything above is due a day from now: the reservation (15 minutes), the team (24 hours), the
    # scheduled deal's start and the second flash batch; a sweep run for that time does all of it.
    counts = deals_sweep(now=now + timedelta(hours=25))
    assert (counts["reservations_expired"], counts["teams_expired"], counts["started"]) == (1, 1, 1)
    assert Order.objects.get(id=reservation.id).state == OrderState.EXPIRED
    assert Team.objects.get(id=int(team_order.team_id or 0)).state == TeamState.EXPIRED
    assert Order.objects.get(id=team_order.id).state == OrderState.VOIDED
    deal.refresh_from_db()
    assert (deal.sold, deal.takers) == (0, 0)
    assert Deal.objects.get(id=later.id).state == DealState.LIVE
    assert Deal.objects.get(id=flash.id).released == 4
    assert not FlashBatch.objects.filter(deal=flash, released_at__isnull=True).exists()
    assert ledger_report().ok
