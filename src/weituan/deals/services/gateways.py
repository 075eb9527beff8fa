"""Payment gateway adapters: authorize / capture / void / refund, each carrying an idempotency key.

The ledger moves the platform's side of the money the same way for every gateway; an adapter does the
provider's side and names the account the buyer's money comes from (`funding_account`). The built-in
wallet keeps its money in the ledger itself, so its calls run inside the caller's transaction
(`local = True`). A hosted provider is reached over HTTP, so its calls run outside any transaction and
rely on the provider honouring the idempotency key when the platform retries after a crash. A provider
that refuses raises `PaymentDeclined`; one that cannot be reached, fails or does not answer in time
raises `GatewayUnavailable`: whether it did the work is unknown, and the caller asks again later under
the same key.

The gateways a buyer may pay with are the wallet plus the providers the site names in
`WEITUAN_PAYMENT_GATEWAYS`, registered when the app starts (`gateways_configure`).
"""

import hashlib
import hmac
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy

from weituan.deals.errors import GatewayUnavailable, PaymentDeclined, UnknownGateway, insufficient_balance
from weituan.deals.models import Account
from weituan.deals.services.ledger import balance_locked, gateway_account, wallet_account


class PaymentGateway(ABC):
    name: str = ""  # what orders record, the API's `gateway` and the provider's webhook path name
    label: Any = ""  # what the checkout shows the buyer (the name when empty)
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
    def refund(self, *, ref: str, amount: int, currency: str, key: str) -> None:
        """Return `amount` of the captured payment `ref`; `key` names this refund, so asking again under it
        never refunds twice."""


# A wallet hold has no outside reference: the hold is the order's `authorize` posting in the ledger.
WALLET_REF = "wallet"


class WalletGateway(PaymentGateway):
    """The built-in wallet: balances are ledger sums; a hold is the wallet -> held posting itself."""

    name = "wallet"
    label = gettext_lazy("Wallet")
    local = True

    def funding_account(self, *, buyer_id: int, currency: str) -> Account:
        return wallet_account(buyer_id, currency)

    def authorize(self, *, buyer_id: int, amount: int, currency: str, key: str) -> str:
        # Must run inside the transaction that writes the hold posting: the row lock taken here is what
        # stops two concurrent orders spending the same balance.
        balance = balance_locked(wallet_account(buyer_id, currency))
        if balance < amount:
            raise insufficient_balance(balance=balance, needed=amount, currency=currency)
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

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        api_key: str,
        webhook_secret: str,
        timeout: float = 10,
        label: str = "",
    ):
        self.name = name
        self.label = label or name
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.webhook_secret = webhook_secret.encode()
        self.timeout = timeout

    def funding_account(self, *, buyer_id: int, currency: str) -> Account:
        return gateway_account(self.name, currency)

    def _post(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """The provider's answer; raises `GatewayUnavailable` when it may or may not have done what it was
        asked (unreachable, too slow, failing, busy: ask again with the same key) and `PaymentDeclined`
        when it refused."""
        try:
            response = httpx.post(
                self.base_url + path,
                json=body,
                headers={"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key},
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise GatewayUnavailable("The payment provider did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"The payment provider is unreachable: {exc}") from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise GatewayUnavailable(f"The payment provider failed ({status})")
        if status == 402:
            raise PaymentDeclined(_message_of(response) or "The card was declined")
        if status >= 400:
            raise PaymentDeclined(
                _message_of(response) or f"The payment provider refused ({status})", code="gateway_error"
            )
        try:
            return dict(response.json())
        except ValueError as exc:
            raise GatewayUnavailable("The payment provider's answer is not JSON") from exc

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


def _message_of(response: httpx.Response) -> str:
    """The `message` of a provider's JSON error, if it gave one."""
    try:
        found = response.json()
    except ValueError:
        return ""
    return str(found.get("message", "")) if isinstance(found, dict) else ""


_GATEWAYS: dict[str, PaymentGateway] = {"wallet": WalletGateway()}
SETTING = "WEITUAN_PAYMENT_GATEWAYS"
# Orders keep the name (30 characters) and the provider's webhooks arrive at a path carrying it.
_NAME = re.compile(r"[a-z0-9_]{1,30}")


def gateways_configure(paths: Sequence[str]) -> None:
    """Make the wallet and the providers `paths` name the gateways orders may use (the app's `ready`
    calls this with `settings.DEALS_PAYMENT_GATEWAYS`).

    Each path names a PaymentGateway subclass or a function taking no arguments that returns a
    gateway: a hosted provider's factory reads its address and secrets from the environment itself.
    A path that does not import, or gives something else, a gateway without a name, or a second
    gateway of one name (the wallet's included) stops start-up: an order must never find its gateway
    missing.
    """
    configured: dict[str, PaymentGateway] = {"wallet": WalletGateway()}
    for path in paths:
        gateway = _gateway_of(path)
        if not _NAME.fullmatch(gateway.name or ""):
            raise ImproperlyConfigured(
                f"{SETTING}: {path} names its gateway {gateway.name!r}; a name is 1 to 30 of a-z, 0-9, _"
            )
        if gateway.name in configured:
            raise ImproperlyConfigured(f"{SETTING}: two gateways are named {gateway.name!r}")
        configured[gateway.name] = gateway
    _GATEWAYS.clear()
    _GATEWAYS.update(configured)


def _gateway_of(path: str) -> PaymentGateway:
    try:
        found = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{SETTING}: cannot import {path}: {exc}") from None
    if not callable(found):
        raise ImproperlyConfigured(f"{SETTING}: {path} is neither a gateway class nor a function")
    try:
        gateway = found()
    except ImproperlyConfigured:
        raise
    except Exception as exc:  # a factory missing its credentials, say: one line naming the setting
        raise ImproperlyConfigured(f"{SETTING}: {path}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(gateway, PaymentGateway):
        raise ImproperlyConfigured(f"{SETTING}: {path}() gave {type(gateway).__name__}, not a PaymentGateway")
    return gateway


def gateway_register(gateway: PaymentGateway) -> None:
    _GATEWAYS[gateway.name] = gateway


def gateway_get(name: str) -> PaymentGateway:
    try:
        return _GATEWAYS[name]
    except KeyError:
        raise UnknownGateway(f"Unknown payment method {name!r}") from None


def gateways_offered() -> list[PaymentGateway]:
    """The gateways a buyer may choose from, the wallet first."""
    return list(_GATEWAYS.values())
