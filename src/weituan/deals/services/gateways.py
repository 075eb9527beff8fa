"""Payment gateway adapters: authorize / capture / void / refund, each carrying an idempotency key.

The ledger moves the platform's side of the money the same way for every gateway; an adapter does the
provider's side and names the account the buyer's money comes from (`funding_account`). The built-in
wallet keeps its money in the ledger itself, so its calls run inside the caller's transaction
(`local = True`). A hosted provider is reached over HTTP, so its calls run outside any transaction and
rely on the provider honouring the idempotency key when the platform retries after a crash.
"""

import hashlib
import hmac
import json
import time
from abc import ABC, abstractmethod
from typing import Any

import httpx

from weituan.deals.errors import InsufficientBalance, PaymentDeclined
from weituan.deals.models import Account
from weituan.deals.services.ledger import balance_locked, gateway_account, wallet_account


class PaymentGateway(ABC):
    name: str = ""
    local: bool = False

    @abstractmethod
    def funding_account(self, *, buyer_id: int, currency: str) -> Account:
        """The ledger account the buyer's money comes from and returns to."""

    @abstractmethod
    def authorize(self, *, buyer_id: int, amount: int, currency: str, key: str) -> str:
        """Hold `amount` of the buyer's money; returns the provider's reference of the hold."""

    @abstractmethod
    def capture(self, *, ref: str, amount: int, currency: str, key: str) -> None: ...

    @abstractmethod
    def void(self, *, ref: str, key: str) -> None: ...

    @abstractmethod
    def refund(self, *, ref: str, amount: int, currency: str, key: str) -> None: ...


# A wallet hold has no outside reference: the hold is the order's `authorize` posting in the ledger.
WALLET_REF = "wallet"


class WalletGateway(PaymentGateway):
    """The built-in wallet: balances are ledger sums; a hold is the wallet -> held posting itself."""

    name = "wallet"
    local = True

    def funding_account(self, *, buyer_id: int, currency: str) -> Account:
        return wallet_account(buyer_id, currency)

    def authorize(self, *, buyer_id: int, amount: int, currency: str, key: str) -> str:
        # Must run inside the transaction that writes the hold posting: the row lock taken here is what
        # stops two concurrent orders spending the same balance.
        balance = balance_locked(wallet_account(buyer_id, currency))
        if balance < amount:
            raise InsufficientBalance(
                f"Your wallet holds {balance} and this order needs {amount} ({currency} minor units)",
                balance=balance,
                needed=amount,
            )
        return WALLET_REF

    def capture(self, *, ref: str, amount: int, currency: str, key: str) -> None:
        return None

    def void(self, *, ref: str, key: str) -> None:
        return None

    def refund(self, *, ref: str, amount: int, currency: str, key: str) -> None:
        return None


class HostedGateway(PaymentGateway):
    """A hosted card provider over HTTPS (JSON, Idempotency-Key header, HMAC-signed webhooks)."""

    local = False

    def __init__(self, *, name: str, base_url: str, api_key: str, webhook_secret: str, timeout: float = 10):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.webhook_secret = webhook_secret.encode()
        self.timeout = timeout

    def funding_account(self, *, buyer_id: int, currency: str) -> Account:
        return gateway_account(self.name, currency)

    def _post(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = httpx.post(
                self.base_url + path,
                json=body,
                headers={"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise PaymentDeclined(
                f"The payment provider is unreachable: {exc}", code="gateway_unavailable"
            ) from exc
        if response.status_code == 402:
            raise PaymentDeclined(response.json().get("message", "The card was declined"))
        if response.status_code >= 400:
            raise PaymentDeclined(
                f"The payment provider refused ({response.status_code})", code="gateway_error"
            )
        return dict(response.json())

    def authorize(self, *, buyer_id: int, amount: int, currency: str, key: str) -> str:
        # `reference` comes back in the provider's webhooks: it finds the order if this answer is lost.
        body = {"amount": amount, "currency": currency, "customer": str(buyer_id), "reference": key}
        return str(self._post("/authorizations", key, body)["id"])

    def capture(self, *, ref: str, amount: int, currency: str, key: str) -> None:
        self._post(f"/authorizations/{ref}/capture", key, {"amount": amount, "currency": currency})

    def void(self, *, ref: str, key: str) -> None:
        self._post(f"/authorizations/{ref}/void", key, {})

    def refund(self, *, ref: str, amount: int, currency: str, key: str) -> None:
        self._post(f"/authorizations/{ref}/refund", key, {"amount": amount, "currency": currency})

    def webhook_sign(self, body: bytes, timestamp: int) -> str:
        mac = hmac.new(self.webhook_secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={mac}"

    def webhook_verify(self, body: bytes, signature: str, *, tolerance: int = 300) -> dict[str, Any]:
        """The webhook's event if `signature` is the provider's and recent; raises PaymentDeclined if not."""
        parts = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise PaymentDeclined("Malformed webhook signature", code="bad_signature") from None
        expected = self.webhook_sign(body, timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected, parts.get("v1", "")) or abs(time.time() - timestamp) > tolerance:
            raise PaymentDeclined("The webhook signature does not match", code="bad_signature")
        return dict(json.loads(body))


_GATEWAYS: dict[str, PaymentGateway] = {"wallet": WalletGateway()}


def gateway_register(gateway: PaymentGateway) -> None:
    _GATEWAYS[gateway.name] = gateway


def gateway_get(name: str) -> PaymentGateway:
    try:
        return _GATEWAYS[name]
    except KeyError:
        raise PaymentDeclined(f"Unknown payment method {name!r}", code="unknown_gateway") from None
