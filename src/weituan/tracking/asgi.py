"""/s/<code> served at the ASGI layer, in front of Django: the redirect is the hottest path of the site.

It does what the Django view does (the view stays for the test client and WSGI) without the
middleware stack, whose sync-only members would send every click through a thread hop. A click
with a cached link and no session cookie never leaves the event loop: its work is a header scan,
one line of text appended to the click spool (see `spool`), and the response. Any other path goes
to Django untouched.
"""

import os
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie

from weituan.tracking.buffer import write_buffer
from weituan.tracking.links_cache import link_resolve_async, local_links
from weituan.tracking.services.events import click_line
from weituan.tracking.visitors import VISITOR_COOKIE, VISITOR_MAX_AGE, redirect_target, visitor_id_valid

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFIX = "/s/"
_PASSED = {b"purpose": "purpose", b"sec-purpose": "sec-purpose", b"x-purpose": "x-purpose", b"x-moz": "x-moz"}
# A signed-in click names its user. Sessions are looked up in the database once and remembered for a
# minute: a click after logout may still be credited to that user for up to a minute, which the
# attribution can bear, while a thread hop and a query per click would halve the redirect rate.
SESSION_USER_TTL = 60.0
_SESSION_USERS_MAX = 50_000
_LOCATIONS_MAX = 100_000
_NO_STORE = (b"cache-control", b"no-store")
_NO_BODY = (b"content-length", b"0")


class _SessionUsers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, int | None]] = {}

    def get(self, session_key: str) -> tuple[bool, int | None]:
        item = self._items.get(session_key)
        if item is None or item[0] < time.monotonic():
            return False, None
        return True, item[1]

    def put(self, session_key: str, user_id: int | None) -> None:
        with self._lock:
            if len(self._items) >= _SESSION_USERS_MAX:
                self._items.clear()
            self._items[session_key] = (time.monotonic() + SESSION_USER_TTL, user_id)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


session_users = _SessionUsers()


def with_short_links(django_app: Any) -> Any:
    """Wrap the Django ASGI app so /s/<code> is answered here and everything else by Django."""
    responder = _Redirector()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and scope["method"] in ("GET", "HEAD"):
                code = path[3:-1] if path.endswith("/") else path[3:]
                if await responder.answer(scope, send, code):
                    return
        await django_app(scope, receive, send)

    return app


def _session_user_id(session_key: str) -> int | None:
    from importlib import import_module

    engine = import_module(settings.SESSION_ENGINE)
    user_id = engine.SessionStore(session_key).get("_auth_user_id")
    try:
        return int(user_id) if user_id is not None else None
    except (TypeError, ValueError):
        return None


class _Redirector:
    """Settings read once: they do not change while the process serves."""

    def __init__(self) -> None:
        self.session_cookie = settings.SESSION_COOKIE_NAME
        self.referrer_policy = (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode())
        secure = "; Secure" if settings.SESSION_COOKIE_SECURE else ""
        self.cookie_tail = f"; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly{secure}"
        self.locations: dict[str, tuple[bytes, bytes]] = {}  # code -> location header (links never change)
        self.buffer = write_buffer()

    async def user_id(self, session_key: str) -> int | None:
        hit, user_id = session_users.get(session_key)
        if not hit:
            user_id = await sync_to_async(_session_user_id)(session_key)
            session_users.put(session_key, user_id)
        return user_id

    async def answer(self, scope: Scope, send: Send, code: str) -> bool:
        """Answer the click; False (let Django render its 404 page) when the code is unknown."""
        hit, link = local_links.get(code)
        if not hit:
            link = await link_resolve_async(code)
        if link is None:
            return False
        user_agent = referrer = cookie = ""
        passed: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"cookie":
                # HTTP/2 may split cookies over several headers.
                cookie = f"{cookie}; {value.decode('latin-1')}" if cookie else value.decode("latin-1")
            elif name == b"referer":
                referrer = value.decode("latin-1")
            elif name in _PASSED:
                if passed is None:
                    passed = {}
                passed[_PASSED[name]] = value.decode("latin-1")
        visitor_id = ""
        user_id = None
        if cookie:
            if ";" in cookie or '"' in cookie:
                cookies = parse_cookie(cookie)  # the parser behind Django's request.COOKIES
                visitor_id = cookies.get(VISITOR_COOKIE, "")
                session_key = cookies.get(self.session_cookie)
                if session_key:
                    user_id = await self.user_id(session_key)
            else:  # one cookie, as parse_cookie reads it
                name, _, value = cookie.partition("=")
                name = name.strip()
                if name == VISITOR_COOKIE:
                    visitor_id = value.strip()
                elif name == self.session_cookie and value.strip():
                    user_id = await self.user_id(value.strip())
        new_visitor = not visitor_id_valid(visitor_id)
        if new_visitor:
            visitor_id = os.urandom(16).hex()
        client = scope.get("client")
        self.buffer.add_click(
            click_line(
                link,
                visitor_id,
                user_id,
                referrer,
                user_agent,
                client[0] if client else "",
                scope["method"],
                passed,
            )
        )
        location = self.locations.get(code)
        if location is None:
            if len(self.locations) >= _LOCATIONS_MAX:
                self.locations.clear()
            location = self.locations[code] = (b"location", redirect_target(link, code).encode())
        headers = [location, _NO_STORE, _NO_BODY, self.referrer_policy]
        if new_visitor:
            headers.append((b"set-cookie", f"{VISITOR_COOKIE}={visitor_id}{self.cookie_tail}".encode()))
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True
