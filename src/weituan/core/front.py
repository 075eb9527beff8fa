"""What the paths answered in front of Django share: the bearer token, the middleware's two sides as
Django runs them, the answer for ASGI or WSGI, and (on ASGI) a scope's header and a small body read
whole while kept for Django should Django answer after all."""

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from http.client import responses
from typing import Any, NamedTuple

from django.core.handlers.asgi import ASGIRequest
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware

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


class Answer(NamedTuple):
    """A response made in front of Django, ready for either server interface."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def bearer_of(value: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, as ninja's HttpBearer reads it."""
    if not value:
        return None
    parts = value.split(" ")
    if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1]:
        return parts[1]
    return None


def _no_view(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the middleware here only decorate a response made elsewhere")


class MiddlewareSides:
    """The middleware of settings.MIDDLEWARE that shape an API response, run as Django runs them."""

    def __init__(self) -> None:
        self.security = SecurityMiddleware(_no_view)
        self.locale = LocaleMiddleware(_no_view)
        self.common = CommonMiddleware(_no_view)
        self.frame = XFrameOptionsMiddleware(_no_view)
        self.csp = ContentSecurityPolicyMiddleware(_no_view)

    def before(self, request: HttpRequest) -> bool:
        """The request side, in settings.MIDDLEWARE order; False when Django must answer (an HTTPS
        redirect, a refused user agent)."""
        if self.security.process_request(request) is not None:
            return False
        self.locale.process_request(request)
        if self.common.process_request(request) is not None:
            return False
        self.csp.process_request(request)
        return True

    def after(self, request: HttpRequest, response: HttpResponse) -> Answer:
        """The response side, in the reverse of settings.MIDDLEWARE, and the response as an Answer."""
        for middleware in (self.csp, self.frame, self.common, self.locale, self.security):
            middleware.process_response(request, response)
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
        for cookie in response.cookies.values():
            headers.append((b"set-cookie", cookie.output(header="").strip().encode("latin-1")))
        return Answer(response.status_code, headers, response.content)


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
