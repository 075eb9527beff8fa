"""Team purchases (拼团): start, join, fill, expire, and the rescue offer (merge or switch to solo price)."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.timesince import timeuntil
from django.utils.translation import gettext as _

from weituan.core.errors import Conflict, NotFound, PermissionDenied, ServiceError, ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.core.money import Money
from weituan.core.states import advance
from weituan.deals.models import (
    ORDER_GRAPH,
    TEAM_GRAPH,
    Deal,
    Order,
    OrderEndReason,
    OrderState,
    Team,
    TeamState,
)
from weituan.deals.models.orders import HELD_STATES
from weituan.deals.services.gateways import gateway_get
from weituan.deals.services.holds import order_hold_step, order_key, order_void, order_void_posting
from weituan.deals.services.locks import order_team_lock
from weituan.deals.services.orders import order_authorized
from weituan.deals.services.write_keys import (
    KeyedRequest,
    merge_request,
    solo_request,
    write_key_keep,
    write_key_of,
    write_key_order,
    write_key_team,
)


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
    schedule_at(tasks.team_rescue_offer_task, rescue_offer_at(team), team.id)
    return team


def team_join(*, deal: Deal, team_id: int, buyer: Any) -> Team:
    """Take a seat in an open team by conditional UPDATE; the last seat fills it."""
    if not 0 < team_id <= MAX_ID:  # names no team; the stores cannot even compare with it
        raise NotFound("No such team on this deal")
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
    """A member's hold ended while the team was still open: free the seat. The last member leaving closes
    the team (expired, as one that did not fill): nobody is left in it to fill it or to lead it, so it is
    no longer offered to join or to merge into. The conditional UPDATEs order it against a join: a join
    that takes the seat first keeps the team open, and one that comes after finds it closed."""
    Team.objects.filter(id=team_id, state=TeamState.OPEN, members__gt=0).update(members=F("members") - 1)
    advance(TEAM_GRAPH, Team.objects.filter(id=team_id, state=TeamState.OPEN, members=0), TeamState.EXPIRED)


def team_expire(*, team_id: int, force: bool = False, now: datetime | None = None) -> int:
    """Close a team that did not fill in time (by `now`, the present by default; or `force`d) and void
    every member's hold; returns holds voided.

    Safe to run again after a crash: the voids run whenever the team is expired, not only when this
    call moved it. A hold its gateway did not release is left held, and the deal sweep runs this again.
    """
    queryset = Team.objects.filter(id=team_id)
    if not force:
        queryset = queryset.filter(expires_at__lte=now or timezone.now())
    advance(TEAM_GRAPH, queryset, TeamState.EXPIRED)
    if not Team.objects.filter(id=team_id, state=TeamState.EXPIRED).exists():
        return 0
    voided = 0
    for order_id in Order.objects.filter(
        team_id=team_id, state__in=(OrderState.PENDING, *HELD_STATES)
    ).values_list("id", flat=True):
        voided += int(order_hold_step(order_void, order_id=order_id, reason=OrderEndReason.TEAM_EXPIRED))
    return voided


def _seated(team_id: int) -> Any:
    """The orders holding a seat of the team now."""
    return Order.objects.filter(team_id=team_id, state__in=(OrderState.PENDING, OrderState.AUTHORIZED))


def team_rescue_options(*, team: Team) -> list[Team]:
    """Other open teams of the same deal with room for all of this team's members, and none of them
    already in it (a team is that many different people, as joining keeps it)."""
    if team.state != TeamState.OPEN:
        return []
    shared = Order.objects.filter(
        team_id=OuterRef("id"),
        state__in=(OrderState.PENDING, OrderState.AUTHORIZED),
        buyer_id__in=_seated(team.id).values("buyer_id"),
    )
    return list(
        Team.objects.filter(deal_id=team.deal_id, state=TeamState.OPEN, expires_at__gt=timezone.now())
        .exclude(id=team.id)
        .filter(size__gte=F("members") + team.members)
        .exclude(Exists(shared))
        .order_by("-members", "expires_at")[:5]
    )


def team_merge(*, team_id: int, into_id: int, by: Any, client_key: str | None = None) -> Team:
    """The leader moves the whole team into another open team of the deal (the rescue offer).

    `client_key` (the request's Idempotency-Key) is kept by the merge itself (`write_keys`): the merge
    sent again with it is answered with the team it moved into however long after, never refused
    `team_closed`.
    """
    if not (0 < team_id <= MAX_ID and 0 < into_id <= MAX_ID):  # a number beyond any id names no team
        raise NotFound("No such team to merge into")
    kept = write_key_of(sender_id=by.id, key=client_key, request=merge_request(team_id, into_id))
    done = write_key_team(kept=kept)
    if done is not None:
        return done
    try:
        return _team_merge(team_id=team_id, into_id=into_id, by=by, kept=kept)
    except ServiceError:
        # The same request sent twice at once: the one that waited for the teams' locks finds them
        # merged already, and answers with the other's merge.
        done = write_key_team(kept=kept)
        if done is not None:
            return done
        raise


def _team_merge(*, team_id: int, into_id: int, by: Any, kept: KeyedRequest | None) -> Team:
    """The merge of `team_merge`, in one transaction holding both teams' locks, keeping `kept`."""
    with transaction.atomic():
        # Lock both rows in primary-key order so two opposite merges cannot deadlock; open teams only, so
        # that a release holding a team merged already (`order_team_lock`) never holds a merge up.
        rows = {
            t.id: t
            for t in Team.objects.select_for_update()
            .filter(id__in=[team_id, into_id], state=TeamState.OPEN)
            .order_by("id")
        }
        if len(rows) < 2:  # one is closed, or missing: read without a lock, to say which
            rows = {t.id: t for t in Team.objects.filter(id__in=[team_id, into_id])}
        team, into = rows.get(team_id), rows.get(into_id)
        if team is None or into is None or team.deal_id != into.deal_id or team_id == into_id:
            raise NotFound("No such team to merge into")
        if team.leader_id != by.id:
            raise PermissionDenied("Only the team's leader can merge it", code="not_team_leader")
        # A team past its time but not yet expired by its task is closed too: nobody may join it.
        closing = min(team.expires_at, into.expires_at)
        if team.state != TeamState.OPEN or into.state != TeamState.OPEN or closing <= timezone.now():
            raise Conflict("Both teams must still be open", code="team_closed")
        if into.members + team.members > into.size:
            raise Conflict("The other team has no room for everyone", code="team_no_room")
        both = _seated(into.id).filter(buyer_id__in=_seated(team.id).values("buyer_id"))
        if both.exists():
            raise Conflict("Someone is a member of both teams", code="team_overlap")
        Team.objects.filter(id=into.id).update(members=F("members") + team.members)
        advance(TEAM_GRAPH, Team.objects.filter(id=team.id), TeamState.MERGED, merged_into=into, members=0)
        Order.objects.filter(team_id=team.id).update(team_id=into.id)
        write_key_keep(kept=kept, team_id=into.id)
        into.refresh_from_db()
        if into.members >= into.size:
            _team_filled(into)
    return into


def team_switch_solo(*, order_id: int, by: Any, client_key: str | None = None) -> Order:
    """A member of an open team gives up the team price: the team hold is released and a new order holds
    the solo price. The stock and quota move to the new order, so nothing is taken twice.

    `client_key` (the request's Idempotency-Key) is kept by the switch itself (`write_keys`): the
    request sent again with it is answered with the solo order however long after.
    """
    order = Order.objects.select_related("deal", "team").filter(id=order_id, buyer=by).first()
    if order is None or order.team is None:
        raise NotFound("No such team order")
    kept = write_key_of(sender_id=by.id, key=client_key, request=solo_request(order.id))
    done = write_key_order(kept=kept)
    if done is not None:
        return done
    payment = gateway_get(order.gateway)
    if not payment.local:
        raise ValidationFailed("Switching to the solo price needs the wallet", code="gateway_unsupported")
    deal = order.deal
    with transaction.atomic():
        # The team's row before the order's, as every release takes them; and its state read under that
        # lock, so the team cannot fill (and its orders be owed their capture) meanwhile.
        team_id = order_team_lock(order_id=order.id)
        still_open = team_id is not None and Team.objects.filter(id=team_id, state=TeamState.OPEN).exists()
        if (
            team_id is None
            or not still_open
            or not advance(
                ORDER_GRAPH,
                Order.objects.filter(id=order.id, state=OrderState.AUTHORIZED),
                OrderState.VOIDED,
                end_reason=OrderEndReason.SWITCHED_SOLO,
            )
        ):
            # The same request sent twice at once: the one that waited for the team's lock finds the
            # other's switch, and answers with it.
            switched = write_key_order(kept=kept)
            if switched is not None:
                return switched
            raise Conflict("Only a held order in an open team can switch", code="not_switchable")
        order_void_posting(order, payment=payment)
        team_leave(team_id=team_id)
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
        write_key_keep(kept=kept, order_id=solo.id)
    from weituan.deals import tasks
    from weituan.deals.services.schedule import schedule_at

    schedule_at(tasks.deal_tip_check_task, timezone.now(), deal.id)
    return solo


logger = logging.getLogger(__name__)

# A team still short of its size is offered a way out an hour before it closes (or, in a shorter
# window, with a quarter of it left), as Pinduoduo reminds a team that is about to fail.
RESCUE_LEAD = timedelta(hours=1)


def rescue_offer_at(team: Team) -> datetime:
    window = team.expires_at - (team.created_at or timezone.now())
    return team.expires_at - min(RESCUE_LEAD, window / 4)


def team_rescue_offer(*, team_id: int, now: datetime | None = None) -> int:
    """Offer the members of a team that has not filled a way out before it closes: the leader may move
    the team into another open team of the deal with room for it, and each member may switch to the solo
    price. Each member is e-mailed once, with their own link to the team's page (a short link of the
    e-mail channel, so the visits it brings are counted as e-mail's). A team is offered once: the offer
    is marked before the mails go out, so a retry sends none twice. Returns the e-mails sent.

    `now` is the present unless the deal sweep runs for another time: the team must still be open then."""
    now = now or timezone.now()
    marked = Team.objects.filter(
        id=team_id, state=TeamState.OPEN, rescue_offered_at__isnull=True, expires_at__gt=now
    ).update(rescue_offered_at=now)
    if not marked:
        return 0
    team = Team.objects.select_related("deal").get(id=team_id)
    merge_into = team_rescue_options(team=team)
    members = Order.objects.filter(
        team_id=team.id, state__in=(OrderState.PENDING, OrderState.AUTHORIZED)
    ).select_related("buyer")
    sent = 0
    for order in members:
        buyer = order.buyer
        if not buyer.email:
            continue
        with translation.override(buyer.locale or settings.LANGUAGE_CODE):
            subject, body = _rescue_mail(
                team, order, leader=buyer.id == team.leader_id, can_merge=bool(merge_into)
            )
        try:
            send_mail(subject, body, None, [buyer.email])
        except Exception:  # one refused address or a mail server down must not stop the others
            logger.exception("team %s: the rescue offer to order %s's buyer was not sent", team.id, order.id)
            continue
        sent += 1
    return sent


def _team_link(team: Team, buyer_id: int) -> str:
    """The member's own e-mail link to the team's page (the plain page when no short link can be made)."""
    from weituan.tracking import facade as tracking

    page = settings.SITE_URL + reverse("deals:team", args=[team.id])
    if team.deal.post_id is None:
        return page
    try:
        return tracking.short_link_for_share(
            sharer_id=buyer_id,
            post_id=team.deal.post_id,
            target_url=page,
            channel="email",
            deal_id=team.deal_id,
            campaign=f"team-rescue-{team.id}",
        ).url
    except ServiceError:
        return page


def _rescue_mail(team: Team, order: Order, *, leader: bool, can_merge: bool) -> tuple[str, str]:
    deal = team.deal
    left = timeuntil(team.expires_at)  # "59 minutes", "23 hours, 59 minutes", in the reader's language
    facts = {"title": deal.title, "members": team.members, "size": team.size, "left": left}
    subject = _("Your team for %(title)s closes in %(left)s") % facts
    lines = [_("Your team has %(members)s of %(size)s members and closes in %(left)s.") % facts]
    if leader and can_merge:
        lines.append(_("As its leader you can move the whole team into another open team that has room."))
    if order.state == OrderState.AUTHORIZED:  # a hold can move to the solo price; a pending payment not
        solo = Money(deal.deal_price * order.quantity, deal.currency).format()
        lines.append(_("You can also keep your order at the solo price of %(price)s.") % {"price": solo})
    lines.append(_("Otherwise your payment hold is released when the team closes."))
    lines.append(_team_link(team, order.buyer_id))
    return subject, "\n\n".join(lines) + "\n"
