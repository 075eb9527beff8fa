"""PostHog's capture API: decoding its payloads (gzip, lz64, base64 form data, batch or single) into native
events, each with the key it was sent with.

Official SDKs send to /batch/ (posthog-python, server SDKs), /e/ and /i/v0/e/ (posthog-js), and
/capture/ (older clients), with the project key as `api_key` or `token`: for the whole request, or in
each event (posthog-js puts it in every event's properties).
"""

import base64
import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from weituan.core.errors import ServiceError, ValidationFailed
from weituan.tracking.lz_string import LzStringInvalid, LzStringTooLong, lz_string_decode_base64
from weituan.tracking.queries import api_key_resolve
from weituan.tracking.services.events import Rejection

MAX_DECODED_BYTES = 20 * 1024 * 1024


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


@dataclass(frozen=True)
class CaptureBatch:
    api_key: str  # the key sent for the whole request ("" when none was)
    events: list[Any]  # native-shaped dicts (or whatever could not be mapped, to be rejected)
    event_keys: list[str]  # each event's key: its own, else the request's ("" when none was sent)


@dataclass(frozen=True)
class CaptureKeys:
    """The key each event of a batch is stored under, and the events refused for theirs."""

    ids: list[int]  # by index; 0 where refused
    refused: list[Rejection]
    # When no event can be stored for want of a valid key, the request is refused as a whole:
    # (code, message) of the 401, as PostHog answers a request without a valid key.
    request_refused: tuple[str, str] | None


KEY_MISSING = ("missing_api_key", "The API key (api_key or token) is missing")
KEY_INVALID = ("invalid_api_key", "The API key is not valid")


def gunzip_limited(data: bytes) -> bytes:
    """Gunzip at most 20 MB (a small body must not expand into a memory bomb)."""
    try:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = decompressor.decompress(data, MAX_DECODED_BYTES + 1)
    except zlib.error:
        raise ValidationFailed("The body is not valid gzip", code="bad_compression") from None
    if len(out) > MAX_DECODED_BYTES or decompressor.unconsumed_tail:
        raise PayloadTooLarge("The decompressed body is larger than 20 MB")
    return out


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(
            text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None
        )
    except ValueError:
        raise ValidationFailed("The data field is not valid base64", code="bad_encoding") from None


def lz64_decode(data: str) -> str:
    """lz-string Base64 text (posthog-js's `compression=lz64`), at most 20 MB decoded.

    A `+` the client did not percent-encode reaches us as a space, as PostHog's own server allows for.
    """
    try:
        return lz_string_decode_base64(data.strip().replace(" ", "+"), limit=MAX_DECODED_BYTES)
    except LzStringInvalid:
        raise ValidationFailed(
            "The data is not valid lz64 (lz-string Base64)", code="bad_compression"
        ) from None
    except LzStringTooLong:
        raise PayloadTooLarge("The decompressed body is larger than 20 MB") from None


def capture_decode(
    *, body: bytes, content_type: str, content_encoding: str, query: dict[str, str]
) -> tuple[Any, str]:
    """The JSON document of a capture request, and a key sent outside it (query string), if any."""
    compression = (query.get("compression") or "").lower()
    if "gzip" in content_encoding.lower() or compression in ("gzip", "gzip-js"):
        if body[:2] == b"\x1f\x8b":
            body = gunzip_limited(body)
        elif "gzip" in content_encoding.lower():
            raise ValidationFailed("The body is not valid gzip", code="bad_compression")
    text: str | bytes = body
    if "application/x-www-form-urlencoded" in content_type or (body[:5] == b"data=" and body[:1] != b"{"):
        form = parse_qs(body.decode("utf-8", "replace"))
        # posthog-js names the compression in the form too (`data=...&compression=lz64`).
        compression = compression or (form.get("compression") or [""])[0].lower()
        data = (form.get("data") or [""])[0]
        if compression == "lz64":
            text = lz64_decode(data)
        else:
            text = _b64(data) if compression == "base64" or not data.lstrip().startswith(("{", "[")) else data
        if isinstance(text, bytes) and text[:2] == b"\x1f\x8b":
            text = gunzip_limited(text)
    elif not body and query.get("data"):
        data = query["data"]
        if compression == "lz64":
            text = lz64_decode(data)
        else:
            text = data if data.lstrip().startswith(("{", "[")) else _b64(data)
    elif compression == "lz64":
        text = lz64_decode(body.decode("ascii", "replace"))
    if isinstance(text, bytes) and compression == "base64" and not text.lstrip().startswith((b"{", b"[")):
        text = _b64(text.decode("ascii", "replace"))
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("The body is not JSON", code="bad_json") from None
    return document, query.get("token") or query.get("api_key") or ""


def capture_batch(document: Any, *, key_outside: str = "", now: datetime | None = None) -> CaptureBatch:
    """Events of a capture document: `{batch: [...]}`, `{data: [...]}`, a list, or one event.

    An event's own key (`api_key`, `token`, or `token` in its properties) wins over the request's.
    """
    now = now or datetime.now(UTC)
    api_key = key_outside
    raw_events: list[Any]
    sent_at: Any = None
    if isinstance(document, list):
        raw_events = document
    elif isinstance(document, dict):
        api_key = str(document.get("api_key") or document.get("token") or api_key)
        sent_at = document.get("sent_at")
        if isinstance(document.get("batch"), list):
            raw_events = document["batch"]
        elif isinstance(document.get("data"), list):
            raw_events = document["data"]
        else:
            raw_events = [document]
    else:
        raise ValidationFailed("The body must be an event, a list or a batch", code="bad_payload")
    skew = _clock_skew(sent_at, now)
    events: list[Any] = []
    event_keys: list[str] = []
    for raw in raw_events:
        if not isinstance(raw, dict):
            events.append(raw)
            event_keys.append(api_key)
            continue
        found = raw.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        own_key = raw.get("api_key") or raw.get("token") or properties.get("token")
        event_keys.append(str(own_key) if own_key else api_key)
        events.append(_native(raw, properties, skew))
    return CaptureBatch(api_key=api_key, events=events, event_keys=event_keys)


def capture_keys(batch: CaptureBatch) -> CaptureKeys:
    """Resolve each event's key: an event with a missing or unknown key is refused, the others stay."""
    resolved: dict[str, int | None] = {}
    ids: list[int] = []
    refused: list[Rejection] = []
    for index, raw_key in enumerate(batch.event_keys):
        if raw_key not in resolved:
            resolved[raw_key] = api_key_resolve(raw_key) if raw_key else None
        key_id = resolved[raw_key]
        ids.append(key_id or 0)
        if not key_id:
            code, reason = KEY_INVALID if raw_key else KEY_MISSING
            refused.append(Rejection(index=index, code=code, reason=reason))
    request_refused = None
    if not batch.events:  # an empty batch: only the request's key can be checked
        if not batch.api_key:
            request_refused = KEY_MISSING
        elif api_key_resolve(batch.api_key) is None:
            request_refused = KEY_INVALID
    elif len(refused) == len(batch.events):
        request_refused = KEY_INVALID if any(batch.event_keys) else KEY_MISSING
    return CaptureKeys(ids=ids, refused=refused, request_refused=request_refused)


def _clock_skew(sent_at: Any, now: datetime) -> float:
    """PostHog corrects event times by the gap between the client's and the server's clocks."""
    if not isinstance(sent_at, str):
        return 0.0
    try:
        sent = datetime.fromisoformat(sent_at)
    except ValueError:
        return 0.0
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    return (now - sent).total_seconds()


def _native(raw: dict[str, Any], properties: dict[str, Any], skew: float) -> dict[str, Any]:
    """The native event; $identify and $create_alias keep the ids they link in props for the store."""
    distinct_id = raw.get("distinct_id") or properties.get("distinct_id") or raw.get("$distinct_id")
    name = raw.get("event")
    if name == "$pageview":
        name = "pageview"
    ts: Any = raw.get("timestamp")
    if isinstance(ts, str) and skew and abs(skew) > 1:
        try:
            moment = datetime.fromisoformat(ts)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            ts = datetime.fromtimestamp(moment.timestamp() + skew, tz=UTC).isoformat()
        except ValueError:
            pass  # left as sent; validation reports it
    referrer = properties.get("$referrer") or ""
    if referrer == "$direct":
        referrer = ""
    props = {k: v for k, v in properties.items() if k not in ("token", "distinct_id", "$set", "$set_once")}
    native = {
        "event": name,
        "ts": ts,
        "visitor_id": str(distinct_id) if distinct_id not in (None, "") else None,
        "event_id": raw.get("uuid") or None,
        "url": properties.get("$current_url") or "",
        "referrer": referrer,
        "props": props,
    }
    return native


def gzip_bytes(data: bytes) -> bytes:
    """Compress like the SDKs do (used by tests and the benchmark's clients)."""
    return gzip.compress(data)
