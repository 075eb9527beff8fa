"""Webhooks of a hosted payment provider: verified by signature, applied once, answered in JSON.

A provider tells us about holds whose outcome we did not hear synchronously: the answer to our
authorize call was lost (a timeout, a crash after the order committed), or the provider ended a hold on
its own. The event names the hold (`authorization`, the provider's reference) and echoes the
`reference` we sent with the authorize call (`order:<id>:authorize`), which finds an order whose
reference we never learned. Every effect goes through the order's state machine, so a repeated event
moves nothing; the event id is also an idempotency key, so a repeat gets the first answer back.
"""

import hashlib
import re
from typing import Any

from django.db.models import Q

from weituan.core.errors import NotFound, ServiceError, ValidationFailed
from weituan.core.idempotency import idempotent_call
from weituan.deals.errors import GatewayUnavailable, PaymentDeclined, UnknownGateway
from weituan.deals.models import Deal, DealState, Order, OrderEndReason, OrderState
from weituan.deals.models.orders import HELD_STATES
from weituan.deals.services.gateways import HostedGateway, gateway_get
from weituan.deals.services.holds import order_capture, order_key, order_reservation_expire, order_void
from weituan.deals.services.orders import order_authorized

EVENT_TYPES = (
    "authorization.succeeded",  # the hold is in place
    "authorization.failed",  # the provider refused or abandoned the hold
    "authorization.voided",  # the provider released the hold on its own (e.g. it expired)
)
_REFERENCE = re.compile(r"^order:(\d+):authorize$")


class WebhookRejected(ServiceError):
    code = "bad_signature"
    status = 400


def payment_webhook_handle(*, gateway_name: str, body: bytes, signature: str) -> dict[str, Any]:
    """Verify and apply one webhook of the provider registered as `gateway_name`; returns the answer."""
    try:
        payment = gateway_get(gateway_name)
    except UnknownGateway:
        payment = None
    if not isinstance(payment, HostedGateway):
        raise NotFound(f"No payment provider named {gateway_name!r}", code="unknown_gateway")
    try:
        event = payment.webhook_verify(body, signature)
    except PaymentDeclined as exc:
        raise WebhookRejected(exc.message) from None
    except (ValueError, TypeError):
        raise WebhookRejected("The webhook body is not a JSON object", code="invalid_webhook") from None
    event_id, kind, data = event.get("id"), event.get("type"), event.get("data")
    if (
        not isinstance(event_id, str)
        or not event_id
        or not isinstance(kind, str)
        or not isinstance(data, dict)
    ):
        raise ValidationFailed("A webhook needs an id, a type and a data object", code="invalid_webhook")
    _status, answer = idempotent_call(
        scope=f"webhook:{payment.name}",
        key=event_id,
        fingerprint=hashlib.sha256(body).hexdigest(),
        run=lambda: (200, {"event": event_id, **_apply(payment, kind, data)}),
    )
    return dict(answer)


def _apply(payment: HostedGateway, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    if kind not in EVENT_TYPES:
        return {"result": "ignored", "order_id": None}
    ref = data.get("authorization")
    if not isinstance(ref, str) or not ref:
        raise ValidationFailed("data.authorization is required", code="invalid_webhook")
    order = _order_of(payment, ref, data.get("reference"))
    if kind == "authorization.succeeded":
        result = _succeeded(payment, order, ref)
    elif order.state == OrderState.PENDING:
        expired = order_reservation_expire(order_id=order.id, force=True, reason=_ended_by(kind))
        result = "expired" if expired else "unchanged"
    elif order.state in HELD_STATES:
        voided = order_void(order_id=order.id, reason=_ended_by(kind), released_by_provider=True)
        result = "voided" if voided else "unchanged"
    else:
        result = "unchanged"
    return {"result": result, "order_id": order.id}


def _ended_by(kind: str) -> str:
    """Why an order the provider's event ends ends: the provider refused the hold, or released it."""
    if kind == "authorization.failed":
        return OrderEndReason.PAYMENT_DECLINED
    return OrderEndReason.PAYMENT_RELEASED


def _order_of(payment: HostedGateway, ref: str, reference: Any) -> Order:
    match = _REFERENCE.match(reference) if isinstance(reference, str) else None
    found = Q(payment_ref=ref)
    if match:
        found |= Q(id=int(match.group(1)))
    order = Order.objects.filter(found, gateway=payment.name).first()
    if order is None:
        raise NotFound("No order holds this authorization", code="order_not_found")
    if order.payment_ref and order.payment_ref != ref:
        raise ValidationFailed("This order holds another authorization", code="authorization_mismatch")
    return order


def _succeeded(payment: HostedGateway, order: Order, ref: str) -> str:
    if order.state == OrderState.PENDING:
        if not order_authorized(order=order, payment=payment, ref=ref):
            return "unchanged"
        state = Deal.objects.filter(id=order.deal_id).values_list("state", flat=True).get()
        if state in (DealState.TIPPED, DealState.SOLD_OUT, DealState.CLOSED) and order.team_id is None:
            try:
                order_capture(order_id=order.id)
            except GatewayUnavailable:
                raise
            except PaymentDeclined:
                # The provider refused the capture: the order failed and its hold was released.
                return "failed"
            return "captured"
        return "authorized"
    if order.state == OrderState.EXPIRED:
        # We gave up on this order before the hold arrived: release it so the buyer is not charged.
        payment.void(ref=ref, key=order_key(order, "void"))
        return "released"
    return "unchanged"
