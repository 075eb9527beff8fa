"""GET /api/v1/timelines/home with a bearer token, answered in front of Django (ASGI and WSGI).

The home timeline is the API's hottest read, and Django's request path (the middleware stack, URL
resolving, ninja's dispatch, under ASGI the hop to a thread per request) cost more than the read itself.
Here the read runs on the WSGI server's thread, or under ASGI on a small pool of threads of its own, and
makes its response with the Django view's own function (`home_timeline_response`), so the body is byte
for byte the view's; the response headers come from the same middleware classes' own `process_request`
and `process_response` (`core.front.MiddlewareSides`), and the caller is marked as seen as
LastSeenMiddleware marks them. The token and the reader's read context come from one statement
(`token_read_context`).

Only the plain success is answered here. A missing, unknown, revoked or deactivated token, a token
without the scope, a bad query string, a disallowed host, an HTTP request that must be redirected to
HTTPS or whose user agent is refused, or any error go to Django untouched, which answers them as it
always does. The token is read on every request (no cache), so revoking it or deactivating its user takes
effect at once.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest

from weituan.accounts.middleware import last_seen_due
from weituan.accounts.scopes import scopes_allow
from weituan.accounts.services import user_touch_last_seen
from weituan.accounts.tokens import HOME_TIMELINE_SCOPES
from weituan.core.errors import ServiceError
from weituan.core.front import (
    Answer,
    MiddlewareSides,
    Receive,
    Scope,
    Send,
    asgi_answered,
    bearer_of,
    connection_ready,
    scope_header,
    wsgi_start,
)
from weituan.mastodon.api_timelines import home_timeline_response
from weituan.microblog.timelines.home import token_read_context

log = logging.getLogger(__name__)


HOME_PATH = "/api/v1/timelines/home"
# Threads per server process for these reads. A read waits on the database and Redis for about half
# its time, so a few threads keep the process busy; more would only trade the GIL back and forth.
HOME_THREADS = 4


_sides: MiddlewareSides | None = None


def home_timeline_answer(make_request: Callable[[], HttpRequest], token: str) -> Answer | None:
    """The response to a home-timeline request, or None when Django should answer it."""
    global _sides
    if _sides is None:
        _sides = MiddlewareSides()
    connection_ready()
    try:
        return _answer(make_request(), token, _sides)
    except (ServiceError, DisallowedHost):
        return None  # Django renders these errors in its usual shape
    except Exception:
        log.exception("home timeline fast path failed; handing the request to Django")
        return None


def _answer(request: HttpRequest, token: str, sides: MiddlewareSides) -> Answer | None:
    request.get_host()  # DisallowedHost for a host outside ALLOWED_HOSTS
    if not sides.before(request):
        return None
    # The token, its user and the reader's home read context in one statement.
    reader = token_read_context(token)
    if reader is None or not scopes_allow(reader.scopes, HOME_TIMELINE_SCOPES):
        return None
    response = home_timeline_response(request, reader.user_id, reader.context)
    answer = sides.after(request, response)
    # What LastSeenMiddleware does for the view: the caller counts as seen (at most once a window).
    if last_seen_due(reader.user_id):
        user_touch_last_seen(user_id=reader.user_id)
    return answer


def with_home_timeline(django_app: Any, *, threads: int = HOME_THREADS) -> Any:
    """Wrap an ASGI app so a bearer-token GET of the home timeline is answered here, the rest by it."""
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="weituan-home")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == HOME_PATH:
            token = bearer_of(scope_header(scope, b"authorization"))
            if token is not None and await asgi_answered(executor, home_timeline_answer, token, scope, send):
                return
        await django_app(scope, receive, send)

    return app


def with_home_timeline_wsgi(django_app: Any) -> Any:
    """Wrap a WSGI app so a bearer-token GET of the home timeline is answered here, the rest by it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == HOME_PATH:
            token = bearer_of(environ.get("HTTP_AUTHORIZATION"))
            if token is not None:
                answer = home_timeline_answer(lambda: WSGIRequest(environ), token)
                if answer is not None:
                    return wsgi_start(start_response, answer)
        return django_app(environ, start_response)

    return app
