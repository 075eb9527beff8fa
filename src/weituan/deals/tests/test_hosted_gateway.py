"""The hosted-provider adapter against the fake provider on 127.0.0.1 (`provider`: a real HTTP server,
real sockets)."""

import json
import time

import pytest

from weituan.deals.errors import PaymentDeclined
from weituan.deals.models import Order, OrderState
from weituan.deals.queries import ledger_report
from weituan.deals.services.deals import deal_end, deal_tip_check
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def test_hosted_gateway_holds_captures_and_retries_idempotently(provider, shopper, make_live_deal):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=1)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=2, gateway="card")
    assert (order.state, order.payment_ref) == (OrderState.AUTHORIZED, "auth_1")
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    assert [path for path, _ in fake.calls] == ["/authorizations", "/authorizations/auth_1/capture"]
    # A retried capture carries the same key, so the provider does not charge twice.
    gateway.capture(ref="auth_1", amount=order.amount, currency="CNY", key=f"order:{order.id}:capture")
    assert len(fake.calls) == 2
    assert ledger_report().ok


def test_declined_card_returns_the_stock(provider, shopper, make_live_deal):
    fake, _ = provider
    fake.decline_customers.add(str(shopper.id))
    deal = make_live_deal()
    with pytest.raises(PaymentDeclined):
        order_place(deal_id=deal.id, buyer=shopper, quantity=1, gateway="card")
    deal.refresh_from_db()
    assert deal.sold == 0
    assert list(Order.objects.values_list("state", flat=True)) == [OrderState.EXPIRED]


def test_failed_deal_voids_at_the_provider(provider, shopper, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=5)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1, gateway="card")
    from django.utils import timezone

    type(deal).objects.filter(id=deal.id).update(ends_at=timezone.now())
    deal_end(deal_id=deal.id)
    assert fake.calls[-1][0] == "/authorizations/auth_1/void"
    assert ledger_report().ok


def test_webhook_signature(provider):
    _, gateway = provider
    body = b'{"type": "authorization.captured", "id": "auth_1"}'
    now = int(time.time())
    assert gateway.webhook_verify(body, gateway.webhook_sign(body, now))["id"] == "auth_1"
    with pytest.raises(PaymentDeclined):
        gateway.webhook_verify(body.replace(b"auth_1", b"auth_2"), gateway.webhook_sign(body, now))
    with pytest.raises(PaymentDeclined):
        gateway.webhook_verify(body, gateway.webhook_sign(body, now - 3600))


def _webhook(gateway, event, *, when=None, name="card", raw=None, signature=None):
    from django.test import Client

    body = raw if raw is not None else json.dumps(event).encode()
    header = signature if signature is not None else gateway.webhook_sign(body, int(when or time.time()))
    return Client().post(
        f"/api/v1/payments/{name}/webhook",
        data=body,
        content_type="application/json",
        headers={"Webhook-Signature": header},
    )


def _pending_order(monkeypatch, deal, buyer):
    """An order whose process stopped after it committed, before hearing the provider's answer."""
    from weituan.deals.services import orders

    monkeypatch.setattr(orders, "order_authorize_remote", lambda *, order_id: False)
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=1, gateway="card")
    monkeypatch.undo()
    assert order.state == OrderState.PENDING
    return order


def test_webhook_completes_a_hold_whose_answer_was_lost(provider, shopper, make_live_deal, monkeypatch):
    from weituan.deals.models import Posting

    fake, gateway = provider
    deal = make_live_deal(tipping_point=5)
    order = _pending_order(monkeypatch, deal, shopper)
    key = f"order:{order.id}:authorize"
    ref = gateway.authorize(buyer_id=shopper.id, amount=order.amount, currency="CNY", key=key)
    event = {
        "id": "evt_1",
        "type": "authorization.succeeded",
        "data": {"authorization": ref, "reference": key},
    }
    first = _webhook(gateway, event)
    assert first.status_code == 200, first.content
    assert first.json() == {"event": "evt_1", "result": "authorized", "order_id": order.id}
    order.refresh_from_db()
    assert (order.state, order.payment_ref) == (OrderState.AUTHORIZED, ref)
    # The provider retries the same event, then sends another one about the same hold: money moves once.
    assert _webhook(gateway, event).json() == first.json()
    second = _webhook(gateway, {**event, "id": "evt_2"})
    assert second.json() == {"event": "evt_2", "result": "unchanged", "order_id": order.id}
    assert list(Posting.objects.filter(order=order).values_list("kind", flat=True)) == ["authorize"]
    # The provider releases the hold on its own: the order is voided and its stock returned.
    voided = _webhook(
        gateway, {"id": "evt_3", "type": "authorization.voided", "data": {"authorization": ref}}
    )
    assert voided.json() == {"event": "evt_3", "result": "voided", "order_id": order.id}
    deal.refresh_from_db()
    assert (Order.objects.get(id=order.id).state, deal.sold) == (OrderState.VOIDED, 0)
    assert fake.calls[-1] == (f"/authorizations/{ref}/void", f"order:{order.id}:void")
    assert ledger_report().ok


def test_webhook_failure_expires_and_a_late_hold_is_released(provider, shopper, make_live_deal, monkeypatch):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=5)
    order = _pending_order(monkeypatch, deal, shopper)
    key = f"order:{order.id}:authorize"
    failed = _webhook(
        gateway,
        {
            "id": "evt_f",
            "type": "authorization.failed",
            "data": {"authorization": "auth_9", "reference": key},
        },
    )
    assert failed.json() == {"event": "evt_f", "result": "expired", "order_id": order.id}
    deal.refresh_from_db()
    assert (Order.objects.get(id=order.id).state, deal.sold) == (OrderState.EXPIRED, 0)
    # A hold that still arrives for the expired order is released at the provider, not kept.
    ref = gateway.authorize(buyer_id=shopper.id, amount=order.amount, currency="CNY", key=key)
    late = _webhook(
        gateway,
        {"id": "evt_l", "type": "authorization.succeeded", "data": {"authorization": ref, "reference": key}},
    )
    assert late.json() == {"event": "evt_l", "result": "released", "order_id": order.id}
    assert fake.calls[-1] == (f"/authorizations/{ref}/void", f"order:{order.id}:void")
    assert Order.objects.get(id=order.id).state == OrderState.EXPIRED
    assert ledger_report().ok


def test_webhook_refusals_are_json_with_codes_and_change_nothing(
    provider, shopper, make_live_deal, monkeypatch
):
    from weituan.core.models import IdempotencyRecord

    _, gateway = provider
    deal = make_live_deal(tipping_point=5)
    order = _pending_order(monkeypatch, deal, shopper)
    event = {
        "id": "evt_x",
        "type": "authorization.succeeded",
        "data": {"authorization": "auth_7", "reference": f"order:{order.id}:authorize"},
    }
    body = json.dumps(event).encode()
    cases = [
        (_webhook(gateway, event, raw=body.replace(b"auth_7", b"auth_8"), signature=gateway.webhook_sign(body, int(time.time()))), 400, "bad_signature"),
        (_webhook(gateway, event, when=time.time() - 3600), 400, "bad_signature"),
        (_webhook(gateway, event, signature=""), 400, "bad_signature"),
        (_webhook(gateway, event, name="nope"), 404, "unknown_gateway"),
        (_webhook(gateway, event, name="wallet"), 404, "unknown_gateway"),
        (_webhook(gateway, None, raw=b"not json"), 400, "invalid_webhook"),
        (_webhook(gateway, {"type": "authorization.succeeded", "data": {}}), 422, "invalid_webhook"),
        (_webhook(gateway, {"id": "evt_y", "type": "authorization.succeeded", "data": {"authorization": "auth_0"}}), 404, "order_not_found"),
    ]  # fmt: skip
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code), response.content
    order.refresh_from_db()
    assert (order.state, order.payment_ref) == (OrderState.PENDING, "")
    assert IdempotencyRecord.objects.count() == 0
    ignored = _webhook(gateway, {"id": "evt_z", "type": "customer.updated", "data": {}})
    assert ignored.json() == {"event": "evt_z", "result": "ignored", "order_id": None}
