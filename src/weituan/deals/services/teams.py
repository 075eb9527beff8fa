"""Team purchases (拼团): start, join, fill, expire, and the rescue offer (merge or switch to solo price)."""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from weituan.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from weituan.core.states import advance
from weituan.deals.models import ORDER_GRAPH, TEAM_GRAPH, Deal, Order, OrderState, Team, TeamState
from weituan.deals.services import ledger
from weituan.deals.services.gateways import gateway_get
from weituan.deals.services.orders import order_authorized, order_key, order_void


def team_start(*, deal: Deal, leader: Any) -> Team:
    """Open a team of `deal.team_size`, the leader its first member. Call inside the order's transaction."""
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    team = Team.objects.create(
        deal=deal,
        leader=leader,
        size=deal.team_size or 2,
        members=1,
        expires_at=min(timezone.now() + timedelta(hours=deal.team_window_hours), deal.ends_at),
    )
    schedule_at(tasks.team_expire_task, team.expires_at, team.id)
    return team


def team_join(*, deal: Deal, team_id: int, buyer: Any) -> Team:
    """Take a seat in an open team by conditional UPDATE; the last seat fills it."""
    already = Order.objects.filter(
        team_id=team_id, buyer=buyer, state__in=(OrderState.PENDING, OrderState.AUTHORIZED)
    ).exists()
    if already:
        raise Conflict("You are already in this team", code="already_in_team")
    seated = Team.objects.filter(
        id=team_id, deal=deal, state=TeamState.OPEN, members__lt=F("size"), expires_at__gt=timezone.now()
    ).update(members=F("members") + 1)
    if seated != 1:
        team = Team.objects.filter(id=team_id, deal=deal).first()
        if team is None:
            raise NotFound("No such team on this deal")
        raise Conflict(f"This team is {team.state} and takes no more members", code="team_closed")
    team = Team.objects.get(id=team_id)
    if team.members >= team.size:
        _team_filled(team)
    return team


def _team_filled(team: Team) -> None:
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    if advance(TEAM_GRAPH, Team.objects.filter(id=team.id, members=F("size")), TeamState.FILLED):
        team.state = TeamState.FILLED
        schedule_at(tasks.deal_tip_check_task, timezone.now(), team.deal_id)


def team_leave(*, team_id: int) -> None:
    """A member's hold ended while the team was still open: free the seat."""
    Team.objects.filter(id=team_id, state=TeamState.OPEN, members__gt=0).update(members=F("members") - 1)


def team_expire(*, team_id: int, force: bool = False) -> int:
    """Close a team that did not fill in time and void every member's hold; returns holds voided.

    Safe to run again after a crash: the voids run whenever the team is expired, not only when this
    call moved it.
    """
    queryset = Team.objects.filter(id=team_id)
    if not force:
        queryset = queryset.filter(expires_at__lte=timezone.now())
    advance(TEAM_GRAPH, queryset, TeamState.EXPIRED)
    if not Team.objects.filter(id=team_id, state=TeamState.EXPIRED).exists():
        return 0
    voided = 0
    for order_id in Order.objects.filter(
        team_id=team_id, state__in=(OrderState.PENDING, OrderState.AUTHORIZED)
    ).values_list("id", flat=True):
        voided += int(order_void(order_id=order_id))
    return voided


def team_rescue_options(*, team: Team) -> list[Team]:
    """Other open teams of the same deal with room for all of this team's members."""
    if team.state != TeamState.OPEN:
        return []
    return list(
        Team.objects.filter(deal_id=team.deal_id, state=TeamState.OPEN, expires_at__gt=timezone.now())
        .exclude(id=team.id)
        .filter(size__gte=F("members") + team.members)
        .order_by("-members", "expires_at")[:5]
    )


def team_merge(*, team_id: int, into_id: int, by: Any) -> Team:
    """The leader moves the whole team into another open team of the deal (the rescue offer)."""
    with transaction.atomic():
        # Lock both rows in primary-key order so two opposite merges cannot deadlock.
        rows = {
            t.id: t for t in Team.objects.select_for_update().filter(id__in=[team_id, into_id]).order_by("id")
        }
        team, into = rows.get(team_id), rows.get(into_id)
        if team is None or into is None or team.deal_id != into.deal_id or team_id == into_id:
            raise NotFound("No such team to merge into")
        if team.leader_id != by.id:
            raise PermissionDenied("Only the team's leader can merge it", code="not_team_leader")
        if team.state != TeamState.OPEN or into.state != TeamState.OPEN:
            raise Conflict("Both teams must still be open", code="team_closed")
        if into.members + team.members > into.size:
            raise Conflict("The other team has no room for everyone", code="team_no_room")
        Team.objects.filter(id=into.id).update(members=F("members") + team.members)
        advance(TEAM_GRAPH, Team.objects.filter(id=team.id), TeamState.MERGED, merged_into=into, members=0)
        Order.objects.filter(team_id=team.id).update(team_id=into.id)
        into.refresh_from_db()
        if into.members >= into.size:
            _team_filled(into)
    return into


def team_switch_solo(*, order_id: int, by: Any) -> Order:
    """A member of an open team gives up the team price: the team hold is released and a new order holds
    the solo price. The stock and quota move to the new order, so nothing is taken twice.
    """
    order = Order.objects.select_related("deal", "team").filter(id=order_id, buyer=by).first()
    if order is None or order.team is None:
        raise NotFound("No such team order")
    payment = gateway_get(order.gateway)
    if not payment.local:
        raise ValidationFailed("Switching to the solo price needs the wallet", code="gateway_unsupported")
    deal = order.deal
    with transaction.atomic():
        if order.team.state != TeamState.OPEN or not advance(
            ORDER_GRAPH, Order.objects.filter(id=order.id, state=OrderState.AUTHORIZED), OrderState.VOIDED
        ):
            raise Conflict("Only a held order in an open team can switch", code="not_switchable")
        ledger.posting_write(
            kind="void",
            key=order_key(order, "void"),
            order=order,
            lines=[
                (ledger.held_account(order.buyer_id, order.currency), -order.amount),
                (payment.funding_account(buyer_id=order.buyer_id, currency=order.currency), order.amount),
            ],
        )
        team_leave(team_id=order.team.id)
        solo = Order.objects.create(
            deal=deal,
            buyer=order.buyer,
            quantity=order.quantity,
            unit_price=deal.deal_price,
            amount=deal.deal_price * order.quantity,
            currency=order.currency,
            gateway=payment.name,
        )
        ref = payment.authorize(
            buyer_id=solo.buyer_id,
            amount=solo.amount,
            currency=solo.currency,
            key=order_key(solo, "authorize"),
        )
        order_authorized(order=solo, payment=payment, ref=ref)
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    schedule_at(tasks.deal_tip_check_task, timezone.now(), deal.id)
    return solo
