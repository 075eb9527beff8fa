"""GET /api/v1/timelines/home with a bearer token, answered in front of Django (ASGI and WSGI).

The home timeline is the API's hottest read, and Django's request path (the middleware stack, URL
resolving, ninja's dispatch, under ASGI the hop to a thread per request) cost more than the read itself.
Here the read runs on the WSGI server's thread, or under ASGI on a small pool of threads of its own, and
makes its response with the Django view's own function (`home_timeline_response`), so the body is byte
for byte the view's; the response headers come from the same middleware classes' own
`process_request` and `process_response` (security, locale, frame options, content security policy),
and the caller is marked as seen as LastSeenMiddleware marks them. The token and the reader's read
context come from one statement (`token_read_context`).

Only the plain success is answered here. A missing, unknown, revoked or deactivated token, a token
without the scope, a bad query string, a disallowed host, an HTTP request that must be redirected to
HTTPS, or any error go to Django untouched, which answers them as it always does. The token is read on
every request (no cache), so revoking it or deactivating its user takes effect at once.
"""

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csp import ContentSecurityPolicyMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware

from weituan.accounts.middleware import last_seen_due
from weituan.accounts.scopes import scopes_allow
from weituan.accounts.services import user_touch_last_seen
from weituan.accounts.tokens import HOME_TIMELINE_SCOPES
from weituan.core.errors import ServiceError
from weituan.mastodon.api_timelines import home_timeline_response
from weituan.microblog.timelines.home import token_read_context

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

HOME_PATH = "/api/v1/timelines/home"
# Threads per server process for these reads. A read waits on the database and Redis for about half
# its time, so a few threads keep the process busy; more would only trade the GIL back and forth.
HOME_THREADS = 4


class Answer(NamedTuple):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, as ninja's HttpBearer reads it."""
    for name, value in headers:
        if name == b"authorization":
            parts = value.decode("latin-1").split(" ")
            if len(parts) == 2 and parts[0].lower() == "bearer" and parts[1]:
                return parts[1]
            return None
    return None


def _no_view(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the middleware here only decorate a response made elsewhere")


class _Decorators:
    """The response-shaping middleware of the Django stack, used as Django uses them."""

    def __init__(self) -> None:
        self.security = SecurityMiddleware(_no_view)
        self.locale = LocaleMiddleware(_no_view)
        self.frame = XFrameOptionsMiddleware(_no_view)
        self.csp = ContentSecurityPolicyMiddleware(_no_view)

    def before(self, request: HttpRequest) -> bool:
        """Run the request side; False when Django must answer (an HTTPS redirect)."""
        if self.security.process_request(request) is not None:
            return False
        self.locale.process_request(request)
        self.csp.process_request(request)
        return True

    def after(self, request: HttpRequest, response: HttpResponse) -> None:
        """Add the stack's headers to `response`, in the reverse of settings.MIDDLEWARE as Django does.
        Each sets headers on the response it is given (none replaces a 200)."""
        for middleware in (self.csp, self.frame, self.locale, self.security):
            middleware.process_response(request, response)


_decorators: _Decorators | None = None


def _connection_ready() -> None:
    """What Django's request start does for the connection, without a health-check query per request.

    A connection that saw an error is checked (and dropped if broken), one past its age is closed;
    otherwise the connection is used as is: a query on a connection that broke since fails, this
    request goes to Django, and the next one here checks it. A pooled connection stays with its
    thread (the pool is for Django's own requests), so the connections in use remain bounded.
    """
    if connection.connection is None or connection.in_atomic_block:
        return  # nothing to check; or a caller's transaction (a test's) that must outlive this request
    if connection.errors_occurred or connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
        connection.close_if_unusable_or_obsolete()
    elif (
        not connection.settings_dict["OPTIONS"].get("pool")
        and connection.close_at is not None
        and time.monotonic() >= connection.close_at
    ):
        connection.close()
    connection.health_check_done = True  # type: ignore[attr-defined]


def home_timeline_answer(make_request: Callable[[], HttpRequest], token: str) -> Answer | None:
    """The response to a home-timeline request, or None when Django should answer it."""
    global _decorators
    if _decorators is None:
        _decorators = _Decorators()
    _connection_ready()
    try:
        return _answer(make_request(), token, _decorators)
    except (ServiceError, DisallowedHost):
        return None  # Django renders these errors in its usual shape
    except Exception:
        log.exception("home timeline fast path failed; handing the request to Django")
        return None


def _answer(request: HttpRequest, token: str, decorators: _Decorators) -> Answer | None:
    request.get_host()  # DisallowedHost for a host outside ALLOWED_HOSTS
    if not decorators.before(request):
        return None
    # The token, its user and the reader's home read context in one statement.
    reader = token_read_context(token)
    if reader is None or not scopes_allow(reader.scopes, HOME_TIMELINE_SCOPES):
        return None
    response = home_timeline_response(request, reader.user_id, reader.context)
    response["Content-Length"] = str(len(response.content))
    decorators.after(request, response)
    # What LastSeenMiddleware does for the view: the caller counts as seen (at most once a window).
    if last_seen_due(reader.user_id):
        user_touch_last_seen(user_id=reader.user_id)
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    return Answer(response.status_code, headers, response.content)


def with_home_timeline(django_app: Any, *, threads: int = HOME_THREADS) -> Any:
    """Wrap an ASGI app so a bearer-token GET of the home timeline is answered here, the rest by it."""
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="weituan-home")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == HOME_PATH:
            token = bearer_token(scope["headers"])
            if token is not None:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(
                    executor, home_timeline_answer, lambda: ASGIRequest(scope, io.BytesIO()), token
                )
                if answer is not None:
                    await send(
                        {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
                    )
                    await send({"type": "http.response.body", "body": answer.body})
                    return
        await django_app(scope, receive, send)

    return app


def with_home_timeline_wsgi(django_app: Any) -> Any:
    """Wrap a WSGI app so a bearer-token GET of the home timeline is answered here, the rest by it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == HOME_PATH:
            value = environ.get("HTTP_AUTHORIZATION")
            token = bearer_token([(b"authorization", value.encode("latin-1"))]) if value else None
            if token is not None:
                answer = home_timeline_answer(lambda: WSGIRequest(environ), token)
                if answer is not None:
                    status = f"{answer.status} {HttpResponse(status=answer.status).reason_phrase}"
                    start_response(
                        status,
                        [(name.decode("latin-1"), value.decode("latin-1")) for name, value in answer.headers],
                    )
                    return [answer.body]
        return django_app(environ, start_response)

    return app
