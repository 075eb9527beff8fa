"""The hosted-provider adapter against a fake provider on 127.0.0.1 (a real HTTP server, real sockets)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from weituan.deals.errors import PaymentDeclined
from weituan.deals.models import Order, OrderState
from weituan.deals.queries import ledger_report
from weituan.deals.services.deals import deal_end, deal_tip_check
from weituan.deals.services.gateways import HostedGateway, gateway_register
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


class FakeProvider:
    """Holds authorizations; answers a repeated Idempotency-Key with its first answer, as providers do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.answers: dict[str, tuple[int, dict]] = {}
        self.decline_customers: set[str] = set()
        self.next_id = 0

    def handle(self, path: str, key: str, body: dict) -> tuple[int, dict]:
        if key in self.answers:
            return self.answers[key]
        self.calls.append((path, key))
        if path == "/authorizations":
            if body["customer"] in self.decline_customers:
                answer = (402, {"message": "card declined"})
            else:
                self.next_id += 1
                answer = (200, {"id": f"auth_{self.next_id}", "status": "held"})
        else:
            answer = (200, {"status": path.rsplit("/", 1)[1]})
        self.answers[key] = answer
        return answer


@pytest.fixture
def provider():
    fake = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            assert self.headers["Authorization"] == "Bearer sk_test"
            status, answer = fake.handle(self.path, self.headers["Idempotency-Key"], body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gateway = HostedGateway(
        name="card",
        base_url=f"http://127.0.0.1:{server.server_port}",
        api_key="sk_test",
        webhook_secret="whsec",
    )
    gateway_register(gateway)
    try:
        yield fake, gateway
    finally:
        server.shutdown()


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
