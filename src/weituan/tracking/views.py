"""Browser-facing endpoints of tracking: /s/<code>, the /collect beacon and PostHog-compatible capture."""

import json
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from weituan.core.errors import ServiceError
from weituan.tracking.links_cache import link_resolve_async
from weituan.tracking.services.events import (
    MAX_BATCH,
    ClientFacts,
    EventInvalid,
    beacon_record,
    click_record,
    events_ingest,
)
from weituan.tracking.services.posthog import capture_batch, capture_decode, capture_keys
from weituan.tracking.static_js import COLLECT_JS
from weituan.tracking.visitors import (
    VISITOR_COOKIE,
    VISITOR_MAX_AGE,
    redirect_target,
    visitor_id_new,
    visitor_id_valid,
)

MAX_BODY = 20 * 1024 * 1024
_PASSED_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


def _visitor(request: HttpRequest) -> tuple[str, bool]:
    """The visitor id from the first-party cookie, or a new one (True when it must be set)."""
    current = request.COOKIES.get(VISITOR_COOKIE, "")
    if visitor_id_valid(current):
        return current, False
    return visitor_id_new(), True


def _set_visitor(response: HttpResponse, visitor_id: str) -> None:
    response.set_cookie(
        VISITOR_COOKIE,
        visitor_id,
        max_age=VISITOR_MAX_AGE,
        samesite="Lax",
        httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
    )


def _client(request: HttpRequest) -> ClientFacts:
    headers = {name: request.headers[name] for name in _PASSED_HEADERS if name in request.headers}
    return ClientFacts(
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ip=request.META.get("REMOTE_ADDR", ""),
        method=request.method or "GET",
        headers=headers,
    )


async def short_link_redirect(request: HttpRequest, code: str) -> HttpResponse:
    """302 to the link's target at once; the click goes to the write buffer, not to the store."""
    link = await link_resolve_async(code)
    if link is None:
        # The page shows the signed-in menu: reading the session and the user is database work.
        return await sync_to_async(render)(
            request, "tracking/link_not_found.html", {"code": code[:16]}, status=404
        )
    visitor_id, new_visitor = _visitor(request)
    user = await request.auser()
    click_record(
        link=link,
        visitor_id=visitor_id,
        user_id=user.pk if user.is_authenticated else None,
        referrer=request.META.get("HTTP_REFERER", ""),
        client=_client(request),
    )
    response = HttpResponseRedirect(redirect_target(link, code))
    response["Cache-Control"] = "no-store"  # a cached redirect would hide the next click
    if new_visitor:
        _set_visitor(response, visitor_id)
    return response


def _privacy_opt_out(request: HttpRequest) -> bool:
    return request.headers.get("DNT") == "1" or request.headers.get("Sec-GPC") == "1"


@csrf_exempt
@require_http_methods(["POST"])
def collect(request: HttpRequest) -> HttpResponse:
    """The first-party beacon: `{event?, url, referrer, props?}` sent by /collect.js with sendBeacon (a page
    calls `wtTrack(event, props)` for its own events)."""
    if _privacy_opt_out(request):
        return HttpResponse(status=204)
    try:
        body = json.loads(request.read(64 * 1024) or b"{}")
    except ValueError:
        return JsonResponse({"error": "The body is not JSON", "code": "bad_json"}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": "The body must be an object", "code": "bad_payload"}, status=400)
    event = body.get("event") or "pageview"
    url, referrer = body.get("url") or "", body.get("referrer") or ""
    if not all(isinstance(value, str) for value in (event, url, referrer)) or len(event) > 200:
        return JsonResponse(
            {"error": "event, url and referrer must be strings", "code": "bad_event"}, status=400
        )
    props = body.get("props") or {}
    if not isinstance(props, dict):
        return JsonResponse({"error": "props must be an object", "code": "bad_props"}, status=400)
    visitor_id, new_visitor = _visitor(request)
    user = getattr(request, "user", None)
    try:
        beacon_record(
            event=event,
            visitor_id=visitor_id,
            user_id=user.pk if user is not None and user.is_authenticated else None,
            url=url,
            referrer=referrer,
            client=_client(request),
            props=props,
        )
    except EventInvalid as refused:
        return JsonResponse({"error": refused.reason, "code": refused.code}, status=400)
    response = HttpResponse(status=204)
    if new_visitor:
        _set_visitor(response, visitor_id)
    return response


def collect_js(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(COLLECT_JS, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def _cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    # PostHog's browser SDK posts from the shop's own origin.
    response["Access-Control-Allow-Origin"] = request.headers.get("Origin") or "*"
    response["Access-Control-Allow-Credentials"] = "true"
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, Content-Encoding"
    response["Vary"] = "Origin"
    return response


def _capture_error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    body = {"type": "validation_error" if status != 401 else "authentication_error", "code": code,
            "detail": message, "error": message}  # fmt: skip
    return _cors(request, JsonResponse(body, status=status))


@csrf_exempt
def posthog_capture(request: HttpRequest) -> HttpResponse:
    """PostHog's /capture/, /batch/, /e/, /i/v0/e/ and /track/: same payloads, same answers."""
    if request.method == "OPTIONS":
        return _cors(request, HttpResponse(status=200))
    if request.method not in ("GET", "POST"):
        return _capture_error(request, 405, "method_not_allowed", "Use POST")
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        return _capture_error(request, 413, "payload_too_large", "The body is larger than 20 MB")
    body = request.read(MAX_BODY + 1) if request.method == "POST" else b""
    query: dict[str, Any] = {key: request.GET.get(key, "") for key in request.GET}
    try:
        document, key_outside = capture_decode(
            body=body,
            content_type=request.content_type or "",
            content_encoding=request.headers.get("Content-Encoding", ""),
            query=query,
        )
        batch = capture_batch(document, key_outside=key_outside)
    except ServiceError as exc:
        return _capture_error(request, exc.status, exc.code, exc.message)
    keys = capture_keys(batch)
    if keys.request_refused is not None:
        return _capture_error(request, 401, *keys.request_refused)
    if len(batch.events) > MAX_BATCH:
        return _capture_error(request, 413, "batch_too_large", f"A batch holds at most {MAX_BATCH} events")
    result = events_ingest(
        events=batch.events,
        origin="posthog",
        api_key_ids=keys.ids,
        refused=keys.refused,
        client=_client(request),
    )
    answer: dict[str, Any] = {"status": 1, "accepted": result.accepted, "duplicates": result.duplicates}
    if result.rejected:
        answer["rejected"] = [{"index": r.index, "code": r.code, "reason": r.reason} for r in result.rejected]
    return _cors(request, JsonResponse(answer))


@csrf_exempt
def posthog_decide(request: HttpRequest) -> HttpResponse:
    """/decide/ and /flags/: Weituan has no feature flags; answering keeps SDKs quiet and working."""
    if request.method == "OPTIONS":
        return _cors(request, HttpResponse(status=200))
    body = {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "quotaLimited": [],
        "sessionRecording": False,
        "supportedCompression": ["gzip", "gzip-js"],
        "config": {"enable_collect_everything": False},
        "toolbarParams": {},
        "isAuthenticated": False,
        "siteApps": [],
        "capturePerformance": False,
        "autocapture_opt_out": True,
        "requestId": uuid.uuid4().hex,
    }
    return _cors(request, JsonResponse(body))
