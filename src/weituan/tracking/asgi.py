"""/s/<code> served at the ASGI layer, in front of Django: the redirect is the hottest path of the site.

It does what the Django view does (the view stays for the test client and WSGI) without the
middleware stack, whose sync-only members would send every click through a thread hop. A click
with a cached link and no session cookie never leaves the event loop: its work is one lookup of the
request path, a header scan, one line appended to the click spool (see `spool`), and a response
prepared with the link. Any other path goes to Django untouched, and so does a click whose code or
query string holds a NUL character (Django refuses it).
"""

import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie

from weituan.core.request_text import query_holds_nul
from weituan.tracking import rows
from weituan.tracking.buffer import write_buffer
from weituan.tracking.clients import bot_reason, ip_anonymous
from weituan.tracking.links_cache import LOCAL_TTL, ResolvedLink, link_resolve_async, local_links
from weituan.tracking.services.events import click_agent_fields_raw, click_agents_raw, click_line_tail_text
from weituan.tracking.services.ingest import CLICK_DEDUP_SECONDS, click_seen
from weituan.tracking.visitors import (
    VISITOR_COOKIE,
    VISITOR_MAX_AGE,
    redirect_target,
    visitor_id_new,
    visitor_id_valid,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_PREFIX = "/s/"
_METHODS = ("GET", "HEAD")
_PASSED = {b"purpose": "purpose", b"sec-purpose": "sec-purpose", b"x-purpose": "x-purpose", b"x-moz": "x-moz"}
# A signed-in click names its user. Sessions are looked up in the database once and remembered for a
# minute: a click after logout may still be credited to that user for up to a minute, which the
# attribution can bear, while a thread hop and a query per click would halve the redirect rate.
SESSION_USER_TTL = 60.0
_SESSION_USERS_MAX = 50_000
_VISITOR_PREFIX = f"{VISITOR_COOKIE}=".encode()
_VISITOR_PREFIX_LENGTH = len(_VISITOR_PREFIX)
_NO_STORE = (b"cache-control", b"no-store")
_NO_BODY = (b"content-length", b"0")
# Bytes searched for a byte value: `b";" in data` takes ~20 times as long on CPython 3.13 (it first
# tries the needle as an integer and builds the TypeError).
_SEMICOLON, _QUOTE = ord(";"), ord('"')
_EMPTY_BODY = {"type": "http.response.body", "body": b""}
_PERCENT_NUL = b"%00"


# The line's is_bot and bot_reason fields for each reason `clients.bot_reason` and the repeat check give.
def _flag_fields(reason: str) -> bytes:
    return f"{1 if reason else 0}\t{reason}".encode()


_FLAGS = {
    reason: _flag_fields(reason)
    for reason in ("", "duplicate", "head", "prefetch", "no_user_agent", "bot_user_agent")
}
_IPS_MAX = 4096


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
    The click line is built as bytes from parts kept per code, per referrer, per user agent, per
    client address and per millisecond, so a known visitor's click decodes and encodes no text.
    """
    redirector = _Redirector()
    redirects = local_links.redirects  # the same dict for the life of the process
    redirect_for = redirector.redirect_for
    spool = redirector.buffer.clicks
    assert spool is not None, "the write buffer has no click spool"
    clicks_opened = redirector.buffer.clicks_opened
    repeats_here = redirector.repeats_here
    cookie_tail = redirector.cookie_tail
    now = time.time
    agents = click_agents_raw
    take_event_id, event_ids_refill = rows.event_ids_bytes.popleft, rows.event_ids_bytes_refill
    # ClickSeen.first_key's two common answers, inlined (see its docstring): `until` is never replaced.
    seen_add, first_again, seen_prune = click_seen.until.setdefault, click_seen.first_key, click_seen.prune
    ips: dict[str, bytes] = {}  # client address -> the line's anonymous `ip` field
    # (the last millisecond seen, its text), replaced whole: a server may run loops in several threads.
    clock: list[tuple[int, bytes]] = [(0, b"")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        prepared = redirects.get(scope.get("path"))  # type: ignore[arg-type]
        ts = now()
        if (
            prepared is None
            or ts > prepared.expires
            or scope["type"] != "http"
            or scope["method"] not in _METHODS
            or _PERCENT_NUL in scope["query_string"]  # a NUL: Django refuses it (see `redirect_for`)
            or 0 in scope["query_string"]
        ):
            prepared = await redirect_for(scope)
            if prepared is None:  # any other path or method, or an unknown code (its 404 page)
                await django_app(scope, receive, send)
                return
        method = scope["method"]
        # Header values stay bytes (ISO-8859-1 text, in ASGI): the parts they map to are kept by value.
        user_agent = referrer = cookie = b""
        passed: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value
            elif name == b"cookie":
                cookie = cookie + b"; " + value if cookie else value  # HTTP/2 may split cookies
            elif name == b"referer":
                referrer = value
            elif name in _PASSED:
                if passed is None:
                    passed = {}
                passed[_PASSED[name]] = value.decode("latin1")
        user_id = None
        if cookie.startswith(_VISITOR_PREFIX) and _SEMICOLON not in cookie and _QUOTE not in cookie:
            visitor = cookie[_VISITOR_PREFIX_LENGTH:]  # only the visitor cookie: the common case
            if not (8 <= len(visitor) <= 64 and visitor.isalnum()):  # ASCII letters and digits
                visitor = _visitor_valid(visitor.decode("latin1").strip())
        elif cookie:
            visitor_text, user_id = await redirector.cookies(cookie.decode("latin1"))
            visitor = _visitor_valid(visitor_text)
        else:
            visitor = b""
        new_visitor = not visitor
        if new_visitor:
            visitor = visitor_id_new().encode()
        # The click line: what events.click_line builds (see spool.CLICK_COLUMNS), at `ts`: the time the
        # request came in.
        key = prepared.head + visitor  # the line's first two fields, and the repeat check's key
        reason, agent = agents.get(user_agent) or click_agent_fields_raw(user_agent)
        if method != "GET" or passed:
            reason = bot_reason(method=method, user_agent=user_agent.decode("latin1"), headers=passed or {})
        if not reason and repeats_here:
            end = ts + CLICK_DEDUP_SECONDS
            seen = seen_add(key, end)
            if seen is end:  # the first click of the link and visitor
                seen_prune()
            elif ts < seen or not first_again(key, ts):
                reason = "duplicate"
        ms, stamp = int(ts * 1000), clock[0]
        if ms != stamp[0]:  # the time as text (the store keeps milliseconds), made once per millisecond
            stamp = clock[0] = (ms, b"%d.%03d" % divmod(ms, 1000))
        try:
            event_id = take_event_id()
        except IndexError:  # the block is used up
            event_id = event_ids_refill()
        client = scope.get("client")
        if client:
            ip = ips.get(client[0])
            if ip is None:
                ip = _ip_field(ips, client[0])
        else:
            ip = b""
        line = b"\t".join(
            (
                key,
                _FLAGS.get(reason) or _flag_fields(reason),
                stamp[1],
                event_id,
                b"%d" % user_id if user_id else b"0",
                agent,
                ip,
                prepared.tails.get(referrer) or prepared.tail(referrer),
            )
        )
        # In the page cache before the redirect is sent: a crash loses no answered click.
        view = spool.view
        if view is None:
            opened = spool.append_bytes(line)
        else:
            try:
                view.write(line)  # ClickSpool.append_bytes, inlined
                opened = 0
            except ValueError:  # the segment is full or was just sealed
                opened = spool.append_bytes(line)
        if opened:
            clicks_opened(opened)
        if new_visitor:
            cookie_header = (b"set-cookie", _VISITOR_PREFIX + visitor + cookie_tail)
            await send(
                {"type": "http.response.start", "status": 302, "headers": (*prepared.headers, cookie_header)}
            )
        else:
            await send(prepared.start)
        await send(_EMPTY_BODY)

    return app


def _visitor_valid(visitor: str) -> bytes:
    """A visitor id read from the cookie as the line holds it, or b"" when it is not a valid one."""
    return visitor.encode() if visitor_id_valid(visitor) else b""


def _ip_field(ips: dict[str, bytes], address: str) -> bytes:
    field = ip_anonymous(address).encode()
    if len(ips) >= _IPS_MAX:  # addresses are many: keep the memory bounded
        ips.clear()
    ips[address] = field
    return field


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

    __slots__ = ("expires", "head", "headers", "link", "link_id", "start", "tails")

    def __init__(self, link: ResolvedLink, headers: tuple[tuple[bytes, bytes], ...]):
        # On the `time.time` clock the click reads anyway. Links never change once made; the expiry
        # only lets a deleted link stop redirecting, as the link cache does.
        self.expires = time.time() + LOCAL_TTL
        self.link = link
        self.link_id = link.facts.link_id
        self.head = b"%d\t" % self.link_id  # the click line up to the visitor id (see click_seen_key)
        self.tails: dict[bytes, bytes] = {}  # referrer -> end of the click line, with its newline
        self.headers = headers  # a tuple: the same one goes out with every click of the code
        # The response start of a known visitor's click: the same message every time (the server
        # only reads it).
        self.start = {"type": "http.response.start", "status": 302, "headers": headers}

    def tail(self, referrer: bytes) -> bytes:
        """The end of the click line for a referrer header, kept for the next click (see `tails`)."""
        tail = f"{click_line_tail_text(self.link, referrer.decode('latin1'))}\n".encode()
        if len(self.tails) >= 64:  # referrers are chosen by the client: keep the memory bounded
            self.tails.clear()
        self.tails[referrer] = tail
        return tail


class _Redirector:
    """Settings read once: they do not change while the process serves."""

    def __init__(self) -> None:
        self.session_cookie = settings.SESSION_COOKIE_NAME
        self.referrer_policy = (b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode())
        secure = "; Secure" if settings.SESSION_COOKIE_SECURE else ""
        self.cookie_tail = f"; Max-Age={VISITOR_MAX_AGE}; Path=/; SameSite=Lax; HttpOnly{secure}".encode()
        self.buffer = write_buffer()
        # Without Redis this process serves alone and flags repeats as clicks come in; with Redis the
        # flush asks Redis (see ingest.click_lines_store).
        self.repeats_here = not settings.REDIS_URL

    async def cookies(self, cookie: str) -> tuple[str, int | None]:
        """(the visitor cookie's value, the signed-in user) of a Cookie header other than a lone visitor id."""
        if ";" in cookie or '"' in cookie:
            cookies = parse_cookie(cookie)  # the parser behind Django's request.COOKIES
            session_key = cookies.get(self.session_cookie)
            if session_key and "\x00" in session_key:  # a quoted value's escape made a NUL: no session
                session_key = None
            user_id = await self.user_id(session_key) if session_key else None
            return cookies.get(VISITOR_COOKIE, ""), user_id
        name, _, value = cookie.partition("=")  # one cookie, as parse_cookie reads it
        name, value = name.strip(), value.strip()
        if name == VISITOR_COOKIE:
            return value, None
        if name == self.session_cookie and value:
            return "", await self.user_id(value)
        return "", None

    async def user_id(self, session_key: str) -> int | None:
        hit, user_id = session_users.get(session_key)
        if not hit:
            user_id = await sync_to_async(_session_user_id)(session_key)
            session_users.put(session_key, user_id)
        return user_id

    async def redirect_for(self, scope: Scope) -> "_Prepared | None":
        """The redirect of a GET or HEAD of /s/<code>, prepared and kept for the path's next clicks;
        None when Django answers the request (another path or method, or no such link).
        """
        if (
            scope["type"] != "http"
            or scope["method"] not in _METHODS
            or not scope["path"].startswith(_PREFIX)
            # A NUL character in the code or the query string: Django refuses the request (see
            # weituan.middleware.NulCharactersMiddleware), as it refuses any request sending one.
            or query_holds_nul(scope["query_string"])
            or "\x00" in scope["path"]
        ):
            return None
        path: str = scope["path"]
        code = path[3:-1] if path.endswith("/") else path[3:]
        link = await link_resolve_async(code)  # a local hit never leaves the event loop
        if link is None:
            return None
        location = (b"location", redirect_target(link, code).encode())
        prepared = _Prepared(link, (location, _NO_STORE, _NO_BODY, self.referrer_policy))
        local_links.redirect_put(path, prepared)
        return prepared
