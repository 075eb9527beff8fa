"""What the paths answered in front of Django share: the bearer token, the middleware's two sides as
Django runs them (and, per host, scheme and language, what they came to), the answer for ASGI or WSGI,
and (on ASGI) a scope's header and a small body read whole while kept for Django should Django answer
after all."""

import asyncio
import io
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from http.client import responses
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import translation

from weituan.core.cors import ApiCorsMiddleware

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case) in an ASGI scope."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def body_buffered(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the whole request body. Returns it (None if the client left first or sent more than `limit`
    bytes, whatever its Content-Length said) and a `receive` that hands the next app the same messages,
    then whatever the client sends after them."""
    chunks: list[bytes] = []
    kept: list[MutableMapping[str, Any]] = []
    complete = False
    size = 0
    while not complete:
        message = await receive()
        kept.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        complete = not message.get("more_body", False)
        if size > limit:
            complete = False  # Django reads the rest under its own limits
            break

    async def replay() -> MutableMapping[str, Any]:
        return kept.pop(0) if kept else await receive()

    if not complete:
        return None, replay
    body = b"".join(chunks)
    kept[:] = [{"type": "http.request", "body": body, "more_body": False}]
    return body, replay


# What the APIs' JSON answers are (ninja's renderer and the error handlers).
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class Answer(NamedTuple):
    """A response made in front of Django, ready for either server interface."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def bearer_of(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, as ninja's HttpBearer reads it."""
    if not value or "\x00" in value:
        return None  # a NUL is refused by Django (NulCharactersMiddleware)
    parts = value.split(" ")
    if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1]:
        return parts[1]
    return None


def _no_view(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the middleware here only decorate a response made elsewhere")


class MiddlewareSides:
    """The middleware of settings.MIDDLEWARE that shape an API response, run as Django runs them."""

    def __init__(self) -> None:
        self.cors = ApiCorsMiddleware(_no_view)
        self.security = SecurityMiddleware(_no_view)
        self.locale = LocaleMiddleware(_no_view)
        self.common = CommonMiddleware(_no_view)
        self.frame = XFrameOptionsMiddleware(_no_view)
        self.csp = ContentSecurityPolicyMiddleware(_no_view)

    def before(self, request: HttpRequest) -> bool:
        """The request side, in settings.MIDDLEWARE order; False when Django must answer (an HTTPS
        redirect, a refused user agent)."""
        if self.cors.process_request(request) is not None:
            return False
        if self.security.process_request(request) is not None:
            return False
        self.locale.process_request(request)
        if self.common.process_request(request) is not None:
            return False
        self.csp.process_request(request)
        return True

    def after(self, request: HttpRequest, response: HttpResponse) -> Answer:
        """The response side, in the reverse of settings.MIDDLEWARE, and the response as an Answer."""
        for middleware in (self.csp, self.frame, self.common, self.locale, self.security, self.cors):
            middleware.process_response(request, response)
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
        for cookie in response.cookies.values():
            headers.append((b"set-cookie", cookie.output(header="").strip().encode("latin-1")))
        return Answer(response.status_code, headers, response.content)


class Prologue(NamedTuple):
    """What Django's request machinery and the middleware made of one host, scheme and language for a
    front path's 200 answer of one content type: the URLs the path builds on the request's scheme and
    host (its `urls_of`), the language activated for it, and the headers the middleware add after the
    view's own, with Content-Length's value left empty."""

    urls: tuple[str, ...]
    language: str
    tail: tuple[tuple[bytes, bytes], ...]
    length_at: int

    def headers(self, view: list[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
        """The response headers for `body`, after the view's own `view` (its Content-Type first)."""
        headers = view + list(self.tail)
        headers[len(view) + self.length_at] = (b"Content-Length", str(len(body)).encode())
        return headers


# The request's parts that Django's host, scheme and language, and the CORS headers, come from (with
# SECURE_PROXY_SSL_HEADER's header, added per settings); a request with a cookie (a language cookie, a
# session) is not kept.
_WSGI_KEYS = (
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_ORIGIN",
)
_ASGI_HEADERS = (b"host", b"accept-language", b"x-forwarded-host", b"x-forwarded-port", b"origin")


class Prologues:
    """A front path's prologues, kept per request key. The middleware's verdict and headers depend on
    the request only through the key's parts (host, scheme, language, script prefix), so a key seen
    once is answered without running the middleware again. Only an answer of `status` (200, or 201
    for a path that creates) and `content_type` is made with a prologue; any other is Django's, or
    made with the middleware run for that request. Settings changes forget them; so does a full
    table (bounded by `size`)."""

    def __init__(
        self,
        content_type: str,
        urls_of: Callable[[HttpRequest], tuple[str, ...]],
        *,
        size: int = 256,
        status: int = 200,
    ) -> None:
        self.content_type = content_type
        self.urls_of = urls_of
        self.status = status
        self.size = size
        self.sides: MiddlewareSides | None = None
        self._kept: dict[tuple[Any, ...], Prologue] = {}
        self._lock = threading.Lock()
        self._settings: tuple[bool, str, bytes] | None = None
        _ALL.append(self)

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()
            self.sides = None
            self._settings = None

    def _read_settings(self) -> tuple[bool, str, bytes]:
        """Whether user agents can be refused (then nothing is kept: the agent decides too), and
        SECURE_PROXY_SSL_HEADER's header as WSGI and as ASGI name it (empty when not set)."""
        read = self._settings
        if read is None:
            header = settings.SECURE_PROXY_SSL_HEADER
            name = header[0] if header else ""
            asgi_name = name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
            read = self._settings = (bool(settings.DISALLOWED_USER_AGENTS), name, asgi_name)
        return read

    def wsgi_key(self, environ: dict[str, Any]) -> tuple[Any, ...] | None:
        """The key of a WSGI request, or None when its prologue must not be kept."""
        agents_refused, proxy, _ = self._read_settings()
        if agents_refused or environ.get("HTTP_COOKIE"):  # an empty Cookie header carries none
            return None
        return (*(environ.get(name) for name in _WSGI_KEYS), environ.get(proxy) if proxy else None)

    def asgi_key(self, scope: Scope) -> tuple[Any, ...] | None:
        """The key of an ASGI request, or None when its prologue must not be kept."""
        agents_refused, _, proxy = self._read_settings()
        if agents_refused:
            return None
        wanted = _ASGI_HEADERS + ((proxy,) if proxy else ())
        values: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name == b"cookie":
                return None
            if name in wanted:
                if name in values:
                    return None  # Django joins repeated headers; not kept
                values[name] = value
        return (
            "asgi",
            scope.get("scheme"),
            tuple(scope.get("server") or ()),
            scope.get("root_path", ""),
            *(values.get(name) for name in wanted),
        )

    def get(self, key: tuple[Any, ...] | None) -> Prologue | None:
        return self._kept.get(key) if key is not None else None

    def made(self, key: tuple[Any, ...] | None, request: HttpRequest) -> Prologue | None:
        """The prologue of `request` as Django's own parts make it (kept under `key`), or None when
        Django must answer: a host outside ALLOWED_HOSTS, an HTTPS redirect, a refused user agent.
        Leaves the request's language activated, as the middleware does."""
        sides = self.sides
        if sides is None:
            sides = self.sides = MiddlewareSides()
        try:
            request.get_host()
        except DisallowedHost:
            return None
        if not sides.before(request):
            return None
        probe = sides.after(request, HttpResponse(b"", status=self.status, content_type=self.content_type))
        names = [name.lower() for name, _ in probe.headers]
        if names[0] != b"content-type" or names.count(b"content-length") != 1:
            return None  # not the shape answered here: Django answers
        tail = probe.headers[1:]
        prologue = Prologue(
            urls=self.urls_of(request),
            language=translation.get_language(),
            tail=tuple(tail),
            length_at=names.index(b"content-length") - 1,
        )
        if key is not None:
            with self._lock:
                if len(self._kept) >= self.size:
                    self._kept.clear()
                self._kept[key] = prologue
        return prologue


_ALL: list[Prologues] = []


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    for prologues in _ALL:
        prologues.forget()


async def asgi_send(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


async def asgi_answered(
    executor: Executor,
    answer_of: Callable[[Callable[[], HttpRequest], Any], Answer | None],
    arg: Any,
    scope: Scope,
    send: Send,
    body: bytes = b"",
) -> bool:
    """Run a front path's `answer_of(make_request, arg)` on its threads and send what it answers; False
    (nothing sent) when it hands the request to Django."""
    loop = asyncio.get_running_loop()
    answer = await loop.run_in_executor(
        executor, answer_of, lambda: ASGIRequest(scope, io.BytesIO(body)), arg
    )
    if answer is None:
        return False
    await asgi_send(send, answer)
    return True


def connection_ready() -> None:
    """What Django's request start does for the connection, without a health-check query per request.

    A connection that saw an error is checked (and dropped if broken), one past its age is closed;
    otherwise the connection is used as is: a query on a connection that broke since fails, that
    request is answered as Django would (or handed to Django), and the next one here checks it. A
    pooled connection stays with its serving thread instead of going back to the pool and being
    checked out again (with the pool's check, a round trip) per request; the pool is for Django's
    own requests, and the connections in use stay bounded by the front paths' threads.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each read through the `connection` proxy is a lookup
    if db.connection is None or db.in_atomic_block:
        return  # nothing to check; or a caller's transaction (a test's) that must outlive this request
    if db.errors_occurred or db.get_autocommit() != db.settings_dict["AUTOCOMMIT"]:
        db.close_if_unusable_or_obsolete()
    elif (
        not db.settings_dict["OPTIONS"].get("pool")
        and db.close_at is not None
        and time.monotonic() >= db.close_at
    ):
        db.close()
    db.health_check_done = True  # type: ignore[attr-defined]


def wsgi_start(start_response: Callable[..., Any], answer: Answer) -> list[bytes]:
    status = (
        f"{answer.status} {responses.get(answer.status, 'Unknown Status Code')}"  # as HttpResponse says it
    )
    start_response(
        status, [(name.decode("latin-1"), value.decode("latin-1")) for name, value in answer.headers]
    )
    return [answer.body]
