"""A fake hosted card provider on 127.0.0.1 (a real HTTP server, real sockets), and the gateway factory
a site names in WEITUAN_PAYMENT_GATEWAYS to reach it (`card_gateway`)."""

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from weituan.deals.services.gateways import HostedGateway

API_KEY = "sk_test"
WEBHOOK_SECRET = "whsec"


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


@contextmanager
def fake_provider_serving() -> Iterator[tuple[FakeProvider, str]]:
    """The fake provider, answering at the URL given with it until the block ends."""
    fake = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            assert self.headers["Authorization"] == f"Bearer {API_KEY}"
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
    try:
        yield fake, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def card_gateway() -> HostedGateway:
    """The gateway of the provider, as a site's factory makes it: its address and secrets come from the
    environment (the tests set CARD_PROVIDER_URL to the fake provider's)."""
    return HostedGateway(
        name="card",
        label="银行卡",
        base_url=os.environ["CARD_PROVIDER_URL"],
        api_key=os.environ["CARD_PROVIDER_API_KEY"],
        webhook_secret=os.environ["CARD_PROVIDER_WEBHOOK_SECRET"],
    )
