"""Background tasks of deals: each takes ids and calls one idempotent service, so retries are safe."""

from django.tasks import task

from weituan.deals.services import deals, holds, refunds, teams


@task
def deal_start_task(deal_id: int) -> bool:
    return deals.deal_start(deal_id=deal_id)


@task
def deal_end_task(deal_id: int) -> str | None:
    return deals.deal_end(deal_id=deal_id)


@task
def deal_tip_check_task(deal_id: int) -> bool:
    return deals.deal_tip_check(deal_id=deal_id)


@task
def deal_settle_task(deal_id: int) -> dict[str, int]:
    return deals.deal_settle(deal_id=deal_id)


@task
def flash_batch_release_task(batch_id: int) -> bool:
    return deals.flash_batch_release(batch_id=batch_id)


@task
def team_expire_task(team_id: int) -> int:
    return teams.team_expire(team_id=team_id)


@task
def team_rescue_offer_task(team_id: int) -> int:
    return teams.team_rescue_offer(team_id=team_id)


@task
def order_reservation_expire_task(order_id: int) -> bool:
    return holds.order_reservation_expire(order_id=order_id)


@task
def refund_complete_task(refund_id: int) -> bool:
    return refunds.refund_attempt(refund_id=refund_id)


@task
def deals_sweep_task() -> dict[str, int]:
    return deals.deals_sweep()
