"""Native API of tracking: batch event ingestion (`POST /api/v1/events`) and ingestion API keys."""

from typing import Any

import orjson
from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from weituan.accounts.auth import api_auth, request_user
from weituan.core.errors import PermissionDenied, ServiceError, Unauthorized, ValidationFailed
from weituan.tracking import queries
from weituan.tracking.services.events import MAX_BATCH, events_ingest
from weituan.tracking.services.keys import api_key_issue
from weituan.tracking.services.posthog import PayloadTooLarge, gunzip_limited

router = Router(tags=["tracking"])
MAX_BODY = 20 * 1024 * 1024


class RejectedOut(Schema):
    index: int
    code: str
    reason: str


class IngestOut(Schema):
    accepted: int
    duplicates: int
    rejected: list[RejectedOut]


class KeyIn(Schema):
    # Trimmed, 1 to 100 characters (else `bad_name`); the pattern asks for one that is not a space.
    name: str = Field(json_schema_extra={"maxLength": 100, "pattern": "[^\\s\\x1c-\\x1f\\x85]"})


class KeyOut(Schema):
    id: int
    name: str
    key: str


class BatchTooLarge(ServiceError):
    code = "batch_too_large"
    status = 413


def _body(request: HttpRequest) -> Any:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        raise PayloadTooLarge("The body is larger than 20 MB")
    raw = request.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge("The body is larger than 20 MB")
    if "gzip" in request.headers.get("Content-Encoding", "").lower():
        raw = gunzip_limited(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed("The body is not JSON", code="bad_json") from None


@router.post("/events", response=IngestOut, auth=None, summary="Ingest a batch of up to 10,000 events")
def events_post(request: HttpRequest) -> dict[str, Any]:
    """Body: `{"events": [...]}` or a JSON list; each `{event, ts, visitor_id, user_id?, url?, referrer?,
    event_id?, props?}`. Send the site's key in `X-Api-Key` (or `api_key` in the body).

    Each event is checked on its own: the answer counts the accepted ones and lists every rejected
    index with its reason. Resending an event_id already stored with the same key counts it as a
    duplicate, not twice. Visitor and user ids are the site's own: they never name Weituan's. A
    browser address in `props.ip` (or `$ip`) is kept only as its network, in the event's `ip`.
    """
    document = _body(request)
    key = request.headers.get("X-Api-Key", "")
    events = document
    if isinstance(document, dict):
        key = key or str(document.get("api_key") or "")
        events = document.get("events")
    if not isinstance(events, list):
        raise ValidationFailed('The body must be a list of events or {"events": [...]}', code="bad_payload")
    if not key:
        raise Unauthorized("Send the site's API key in the X-Api-Key header", code="missing_api_key")
    key_id = queries.api_key_resolve(key)
    if key_id is None:
        raise Unauthorized("The API key is not valid", code="unknown_api_key")
    if len(events) > MAX_BATCH:
        raise BatchTooLarge(f"A batch holds at most {MAX_BATCH} events; this one has {len(events)}")
    result = events_ingest(events=events, origin="api", api_key_id=key_id)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.index, "code": r.code, "reason": r.reason} for r in result.rejected],
    }


@router.post("/tracking/keys", response={201: KeyOut}, auth=api_auth, summary="Issue an ingestion API key")
def keys_post(request: HttpRequest, payload: KeyIn) -> Status:
    """Merchants and operators issue keys for their sites; the key is shown once."""
    user = request_user(request)
    if user is None or not (user.is_verified_merchant or user.is_operator):
        raise PermissionDenied("Only verified merchants and operators can issue API keys")
    issued = api_key_issue(name=payload.name, owner_id=user.pk)
    return Status(201, {"id": issued.id, "name": issued.name, "key": issued.key})
