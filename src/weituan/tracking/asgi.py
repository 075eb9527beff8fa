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

from weituan.tracking import rows
from weituan.tracking.buffer import write_buffer
from weituan.tracking.clients import bot_reason, ip_anonymous
from weituan.tracking.links_cache import ResolvedLink, link_resolve_async, local_links
from weituan.tracking.services.events import click_agent_fields, click_agents, click_line_tail
from weituan.tracking.services.ingest import CLICK_DEDUP_SECONDS, click_seen
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
_VISITOR_PREFIX = f"{VISITOR_COOKIE}="
_VISITOR_PREFIX_LENGTH = len(_VISITOR_PREFIX)
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
    """Wrap the Django ASGI app so /s/<code> is answered here and everything else by Django.

    The redirect is `events.click_add` and the view's response inlined into one coroutine, with what
    it reads bound once: this runs for every click, and every call or lookup saved shows in its rate.
    """
    redirector = _Redirector()
    entries = local_links.entries  # the same dict for the life of the process
    spool = redirector.buffer.clicks
    assert spool is not None, "the write buffer has no click spool"
    clicks_opened = redirector.buffer.clicks_opened
    prepare = redirector.prepare
    repeats_here = redirector.repeats_here
    cookie_tail = redirector.cookie_tail
    session_cookie = redirector.session_cookie
    monotonic, now = time.monotonic, time.time
    seen_lock, seen_until = click_seen.lock, click_seen.until
    # (the last millisecond seen, its text), replaced whole: a server may run loops in several threads.
    clock: list[tuple[int, str]] = [(0, "")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"] if scope["type"] == "http" else ""
        if not path.startswith(_PREFIX) or scope["method"] not in ("GET", "HEAD"):
            await django_app(scope, receive, send)
            return
        code = path[3:-1] if path.endswith("/") else path[3:]
        entry = entries.get(code)
        if entry is not None and entry.expires >= monotonic():
            if entry.link is None:
                await django_app(scope, receive, send)  # its 404 page
                return
            prepared = entry.redirect
            if prepared is None:
                prepared = entry.redirect = prepare(code, entry.link)
        else:
            link = await link_resolve_async(code)
            if link is None:
                await django_app(scope, receive, send)
                return
            prepared = prepare(code, link)
        user_agent = referrer = cookie = ""
        passed: dict[str, str] | None = None
        # Header values are ISO-8859-1 (ASGI); "latin1" is the spelling CPython decodes fastest.
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin1")
            elif name == b"cookie":
                # HTTP/2 may split cookies over several headers.
                cookie = f"{cookie}; {value.decode('latin1')}" if cookie else value.decode("latin1")
            elif name == b"referer":
                referrer = value.decode("latin1")
            elif name in _PASSED:
                if passed is None:
                    passed = {}
                passed[_PASSED[name]] = value.decode("latin1")
        visitor_id = ""
        user_id = None
        if cookie:
            if ";" in cookie or '"' in cookie:
                cookies = parse_cookie(cookie)  # the parser behind Django's request.COOKIES
                visitor_id = cookies.get(VISITOR_COOKIE, "")
                session_key = cookies.get(session_cookie)
                if session_key:
                    user_id = await redirector.user_id(session_key)
            elif cookie.startswith(_VISITOR_PREFIX):  # only the visitor cookie: the common case
                visitor_id = cookie[_VISITOR_PREFIX_LENGTH:].strip()
            else:  # one cookie, as parse_cookie reads it
                name, _, value = cookie.partition("=")
                name = name.strip()
                if name == VISITOR_COOKIE:
                    visitor_id = value.strip()
                elif name == session_cookie and value.strip():
                    user_id = await redirector.user_id(value.strip())
        # The common valid id (letters and digits) is told without a call.
        new_visitor = not (8 <= len(visitor_id) <= 64 and visitor_id.isalnum()) and not visitor_id_valid(
            visitor_id
        )
        if new_visitor:
            visitor_id = os.urandom(16).hex()
        # The click line: what events.click_line builds (see spool.CLICK_COLUMNS).
        ts = now()
        reason, agent = click_agents.get(user_agent) or click_agent_fields(user_agent)
        method = scope["method"]
        if method != "GET" or passed:
            reason = bot_reason(method=method, user_agent=user_agent, headers=passed or {})
        link = prepared.link
        if not reason and repeats_here:  # ClickSeen.first, inlined
            key = (link.facts.link_id, visitor_id)
            with seen_lock:
                end = seen_until.get(key)
                if end is not None and ts < end:
                    reason = "duplicate"
                else:
                    seen_until[key] = ts + CLICK_DEDUP_SECONDS
            if end is None:
                click_seen.prune()
        ms, stamp = int(ts * 1000), clock[0]
        if ms != stamp[0]:  # the time as text (the store keeps milliseconds), made once per millisecond
            stamp = clock[0] = (ms, f"{ms // 1000}.{ms % 1000:03d}")
        client = scope.get("client")
        tail = prepared.tails.get(referrer) or click_line_tail(link, referrer)
        line = (
            f"{prepared.head}{visitor_id}\t{'1' if reason else '0'}\t{reason}\t{stamp[1]}\t{rows.event_id_next()}\t"
            f"{user_id or 0}\t{agent}\t{ip_anonymous(client[0]) if client else ''}\t{tail}\n"
        )
        # In the page cache before the redirect is sent: a crash loses no answered click.
        opened = spool.append(line)
        if opened:
            clicks_opened(opened)
        headers = prepared.headers
        if new_visitor:
            headers = (*headers, (b"set-cookie", f"{VISITOR_COOKIE}={visitor_id}{cookie_tail}".encode()))
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    return app


def _session_user_id(session_key: str) -> int | None:
    from importlib import import_module

    engine = import_module(settings.SESSION_ENGINE)
    user_id = engine.SessionStore(session_key).get("_auth_user_id")
    try:
        return int(user_id) if user_id is not None else None
    except (TypeError, ValueError):
        return None


class _Prepared:
    """What a redirect to one code needs besides the click: prepared on its first click."""

    __slots__ = ("head", "headers", "link", "tails")

    def __init__(self, link: ResolvedLink, headers: tuple[tuple[bytes, bytes], ...]):
        self.link = link
        self.head = f"{link.facts.link_id}\t"  # the click line up to the visitor id
        self.tails = link.click_rows  # referrer -> end of the click line (see events.click_line_tail)
        self.headers = headers  # a tuple: the same one goes out with every click of the code


class _Redirector:
    """Settings read once: they do not change while the process serves."""

    def __init__(self) -> None:
        self.session_cookie = settings.SESSION_COOKIE_NAME
        self.referrer_policy = (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode())
        secure = "; Secure" if settings.SESSION_COOKIE_SECURE else ""
        self.cookie_tail = f"; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly{secure}"
        self.buffer = write_buffer()
        # Without Redis this process serves alone and flags repeats as clicks come in; with Redis the
        # flush asks Redis (see ingest.click_lines_store).
        self.repeats_here = not settings.REDIS_URL

    async def user_id(self, session_key: str) -> int | None:
        hit, user_id = session_users.get(session_key)
        if not hit:
            user_id = await sync_to_async(_session_user_id)(session_key)
            session_users.put(session_key, user_id)
        return user_id

    def prepare(self, code: str, link: ResolvedLink) -> _Prepared:
        location = (b"location", redirect_target(link, code).encode())
        return _Prepared(link, (location, _NO_STORE, _NO_BODY, self.referrer_policy))
