"""/s/<code> served at the ASGI layer, in front of Django: the redirect is the hottest path of the site.

It does what the Django view does (the view stays for the test client and WSGI) without the
middleware stack, whose sync-only members would send every click through a thread hop. Any other
path goes to Django untouched.
"""

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from weituan.tracking.links_cache import link_resolve_async
from weituan.tracking.services.events import ClientFacts, click_record
from weituan.tracking.visitors import VISITOR_COOKIE, VISITOR_MAX_AGE, redirect_target, visitor_id_valid

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_PATH = re.compile(r"^/s/([A-Za-z0-9]{1,64})/?$")
_PASSED = {b"purpose": "purpose", b"sec-purpose": "sec-purpose", b"x-purpose": "x-purpose", b"x-moz": "x-moz"}


def with_short_links(django_app: Any) -> Any:
    """Wrap the Django ASGI app so /s/<code> is answered here and everything else by Django."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _PATH.match(scope["path"])
            if match and await _redirect(scope, send, match.group(1)):
                return
        await django_app(scope, receive, send)

    return app


def _visitor_from(cookies: SimpleCookie) -> tuple[str, bool]:
    morsel = cookies.get(VISITOR_COOKIE)
    current = morsel.value if morsel is not None else ""
    if visitor_id_valid(current):
        return current, False
    return uuid.uuid4().hex, True


async def _user_id(cookies: SimpleCookie) -> int | None:
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return None
    return await sync_to_async(_session_user_id)(morsel.value)


def _session_user_id(session_key: str) -> int | None:
    from importlib import import_module

    engine = import_module(settings.SESSION_ENGINE)
    user_id = engine.SessionStore(session_key).get("_auth_user_id")
    try:
        return int(user_id) if user_id is not None else None
    except (TypeError, ValueError):
        return None


async def _redirect(scope: Scope, send: Send, code: str) -> bool:
    """Answer the click; False (let Django render its 404 page) when the code is unknown."""
    link = await link_resolve_async(code)
    if link is None:
        return False
    headers: dict[bytes, bytes] = {}
    extra: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers[name] = value
        if name in _PASSED:
            extra[_PASSED[name]] = value.decode("latin-1")
    cookies: SimpleCookie = SimpleCookie()
    if b"cookie" in headers:
        try:
            cookies.load(headers[b"cookie"].decode("latin-1"))
        except Exception:  # a malformed Cookie header is the browser's problem, not the click's
            cookies = SimpleCookie()
    visitor_id, new_visitor = _visitor_from(cookies)
    client = scope.get("client") or ("", 0)
    click_record(
        link=link,
        visitor_id=visitor_id,
        user_id=await _user_id(cookies),
        referrer=headers.get(b"referer", b"").decode("latin-1"),
        client=ClientFacts(
            user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
            ip=client[0] or "",
            method=scope["method"],
            headers=extra,
        ),
    )
    target = redirect_target(link, code)
    response_headers = [
        (b"location", target.encode("utf-8")),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
        (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()),
    ]
    if new_visitor:
        secure = "; Secure" if settings.SESSION_COOKIE_SECURE else ""
        cookie = f"{VISITOR_COOKIE}={visitor_id}; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly{secure}"
        response_headers.append((b"set-cookie", cookie.encode()))
    await send({"type": "http.response.start", "status": 302, "headers": response_headers})
    await send({"type": "http.response.body", "body": b""})
    return True
