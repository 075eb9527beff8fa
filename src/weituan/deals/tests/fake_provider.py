"""A fake hosted card provider on 127.0.0.1 (a real HTTP server, real sockets), and the gateway factory
a site names in WEITUAN_PAYMENT_GATEWAYS to reach it (`card_gateway`)."""

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from weituan.deals.services.gateways import HostedGateway

API_KEY = "sk_test"
WEBHOOK_SECRET = "whsec"


class FakeProvider:
    """Holds, captures, voids and refunds authorizations as a provider does, and answers a repeated
    Idempotency-Key with its first answer (a key sent again with another body is refused, 422).

    `calls` are the operations it carried out, once per key; `requests` every request that reached it
    (replays and the ones it failed included), with its body. Trouble to order: `outage` answers every
    request with that status and does nothing; `late_by` seconds pass between carrying out an operation
    and answering (a client with a shorter timeout never hears it was done); the refunds of the
    authorizations in `refusing_refunds` are refused (409), and the captures of the customers in
    `refusing_captures` (402: the issuer declined). A hold whose `status` a test sets to "expired" has
    lapsed: its capture and its void are refused (409), as is either on a hold it does not know (404).
    `while_handling` maps an operation
    ("authorize", "capture", "void", "refund") to a call run once, when the first request for it arrives
    and before the provider acts on it: what happens elsewhere while the provider is at work (it runs on
    the server's thread, which has a database connection of its own).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.decline_customers: set[str] = set()
        self.refusing_refunds: set[str] = set()
        self.refusing_captures: set[str] = set()
        self.holds: dict[str, dict[str, Any]] = {}
        self.outage: int | None = None
        self.while_handling: dict[str, Callable[[], None]] = {}
        self.late_by = 0.0
        self.next_id = 0
        self._lock = threading.Lock()

    def refunds(self) -> list[tuple[str, str, dict[str, Any]]]:
        """The refund requests that reached the provider: (path, key, body), replays included."""
        return [request for request in self.requests if request[0].endswith("/refund")]

    def handle(self, path: str, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        operation = "authorize" if path == "/authorizations" else path.rsplit("/", 1)[-1]
        meanwhile = self.while_handling.pop(operation, None)
        if meanwhile is not None:
            meanwhile()  # outside the lock: it may ask the provider itself
        with self._lock:
            self.requests.append((path, key, body))
            if self.outage is not None:
                return self.outage, {"message": "internal error"}
            if key in self.answers:
                if self.bodies[key] != body:
                    return 422, {"message": "this Idempotency-Key was sent with another request"}
                return self.answers[key]
            self.calls.append((path, key))
            answer = self._carry_out(path, body)
            self.answers[key], self.bodies[key] = answer, body
        if self.late_by:
            time.sleep(self.late_by)
        return answer

    def _carry_out(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/authorizations":
            if body["customer"] in self.decline_customers:
                return 402, {"message": "card declined"}
            self.next_id += 1
            ref = f"auth_{self.next_id}"
            self.holds[ref] = {
                "amount": body["amount"], "currency": body["currency"], "status": "held", "refunded": 0,
                "customer": body["customer"],
            }  # fmt: skip
            return 200, {"id": ref, "status": "held"}
        _, _, ref, action = path.split("/")
        hold = self.holds.get(ref)
        if hold is None:
            return 404, {"message": f"no authorization {ref}"}
        if action == "void":
            if hold["status"] != "held":
                return 409, {"message": f"the authorization is {hold['status']}"}
            hold["status"] = "voided"
        elif action == "capture":
            if hold["status"] != "held" or body["amount"] > hold["amount"]:
                return 409, {"message": f"the authorization is {hold['status']}"}
            if hold["customer"] in self.refusing_captures:
                return 402, {"message": "the card issuer declined the capture"}
            hold.update(status="captured", amount=body["amount"])
        elif action == "refund":
            if ref in self.refusing_refunds:
                return 409, {"message": "the charge is disputed"}
            if (
                hold["status"] != "captured"
                or body["currency"] != hold["currency"]
                or hold["refunded"] + body["amount"] > hold["amount"]
            ):
                return 422, {"message": "nothing left to refund"}
            hold["refunded"] += body["amount"]
        return 200, {"status": action}


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
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up waiting (`late_by`)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens: a connection there is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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
