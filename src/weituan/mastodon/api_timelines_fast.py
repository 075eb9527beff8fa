"""GET /api/v1/timelines/home with a bearer token, answered in front of Django (ASGI and WSGI).

The home timeline is the API's hottest read, and Django's request path (the middleware stack, URL
resolving, ninja's dispatch, under ASGI the hop to a thread per request) cost more than the read itself.
Here the read runs on the WSGI server's thread, or under ASGI on a small pool of threads of its own, and
makes its response from the Django view's own parts (the page's ids, `home_statuses_bytes`, the `Link`
header), so the body is byte for byte the view's. The response headers are what the same middleware
classes' own `process_request` and `process_response` make (`core.front.MiddlewareSides`), run once per
host, scheme and language and kept (`core.front.Prologues`); the query string is read once per distinct
string (`QueryPage`). No request object is made unless a status has to be rendered. The caller is
marked as seen as LastSeenMiddleware marks them. The token and the reader's read context come from one
statement (`token_read_context`).

Only the plain success is answered here, for a reader without a home keyword filter. A missing, unknown, revoked or deactivated token, a token
without the scope, a bad query string (or one with a NUL character), a disallowed host, an HTTP
request that must be redirected to HTTPS or whose user agent is refused, or any error go to Django
untouched, which answers them as it always does. The token is read on every request (no cache), so revoking it or deactivating its user takes
effect at once.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import translation

from weituan.accounts.middleware import last_seen_due
from weituan.accounts.scopes import scopes_allow
from weituan.accounts.services import user_touch_last_seen
from weituan.accounts.tokens import HOME_TIMELINE_SCOPES
from weituan.core.errors import ServiceError
from weituan.core.front import (
    JSON_CONTENT_TYPE,
    Answer,
    Prologue,
    Prologues,
    Receive,
    Scope,
    Send,
    asgi_answered,
    bearer_of,
    connection_ready,
    scope_header,
    wsgi_start,
)
from weituan.core.request_text import query_holds_nul
from weituan.mastodon.home_statuses import home_statuses_bytes
from weituan.mastodon.pagination import QueryPage, link_header_of
from weituan.mastodon.serializers_accounts import absolute_url
from weituan.mastodon.serializers_statuses import site_base
from weituan.microblog.timelines.home import home_timeline_ids_in, page_ask, token_read_context

log = logging.getLogger(__name__)


HOME_PATH = "/api/v1/timelines/home"
# Threads per server process for these reads. On PostgreSQL a read waits on the database and Redis for
# about half its time, so a few threads keep the process busy; more would only trade the GIL back and
# forth. SQLite's statements run in the process and wait on nothing: there a second thread only trades
# the GIL (served by uvicorn on a 100k-user world, 0.76 ms of CPU a read with four, 0.48 with one).
HOME_THREADS = 4
HOME_THREADS_SQLITE = 1


def home_threads() -> int:
    """The threads the ASGI app answers home reads on, for this process's database."""
    return HOME_THREADS if settings.IS_POSTGRES else HOME_THREADS_SQLITE


_CONTENT_TYPE = (b"Content-Type", JSON_CONTENT_TYPE.encode("latin-1"))


def _urls(request: HttpRequest) -> tuple[str, ...]:
    """The page's own URL (the `Link` header's base) and the site base statuses link to."""
    return absolute_url(request.path, request), site_base(request)


_prologues = Prologues(JSON_CONTENT_TYPE, _urls)
_queries = QueryPage()


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    _queries.forget()


class _Asked:
    """One request as the front path sees it: its token, query string, prologue key and a maker of
    Django's request object (made at most once, and only when needed)."""

    __slots__ = ("_request", "key", "make", "query", "token")

    def __init__(self, token: str, query: str | bytes, key: tuple[Any, ...] | None) -> None:
        self.token, self.query, self.key = token, query, key
        self.make: Callable[[], HttpRequest] | None = None
        self._request: HttpRequest | None = None

    def request(self) -> HttpRequest:
        if self._request is None:
            assert self.make is not None
            self._request = self.make()
        return self._request


def home_timeline_answer(make_request: Callable[[], HttpRequest], asked: _Asked) -> Answer | None:
    """The response to a home-timeline request, or None when Django should answer it."""
    asked.make = make_request
    connection_ready()
    try:
        return _answer(asked)
    except (ServiceError, SuspiciousOperation, UnicodeDecodeError):
        return None  # Django renders these errors in its usual shape
    except Exception:
        log.exception("home timeline fast path failed; handing the request to Django")
        return None


def _answer(asked: _Asked) -> Answer | None:
    if query_holds_nul(asked.query):
        return None  # refused by Django (NulCharactersMiddleware)
    prologue: Prologue | None = _prologues.get(asked.key)
    if prologue is None:
        prologue = _prologues.made(asked.key, asked.request())
        if prologue is None:
            return None
    else:
        translation.activate(prologue.language)  # as LocaleMiddleware's request side does
    page, kept = _queries.of(asked.query)
    # The token, its user and the reader's home read context in one statement.
    reader = token_read_context(
        asked.token, page_ask(max_id=page.max_id, min_id=page.min_id, limit=page.limit)
    )
    if reader is None or not scopes_allow(reader.scopes, HOME_TIMELINE_SCOPES):
        return None
    if reader.context.filtered:
        return None  # a reader with a home keyword filter: Django's view filters the page
    ids = home_timeline_ids_in(
        reader.user_id,
        reader.context,
        max_id=page.max_id,
        since_id=page.since_id,
        min_id=page.min_id,
        limit=page.limit,
    )
    url, base = prologue.urls
    body = home_statuses_bytes(ids, reader.user_id, base, asked.request, reader.context.hidden)
    view = [_CONTENT_TYPE]
    if ids:
        link = link_header_of(url, kept, next_max_id=ids[-1], prev_min_id=ids[0])
        if link:
            view.append((b"Link", link.encode("latin-1")))
    answer = Answer(200, prologue.headers(view, body), body)
    # What LastSeenMiddleware does for the view: the caller counts as seen (at most once a window).
    if last_seen_due(reader.user_id):
        user_touch_last_seen(user_id=reader.user_id)
    return answer


def with_home_timeline(django_app: Any, *, threads: int | None = None) -> Any:
    """Wrap an ASGI app so a bearer-token GET of the home timeline is answered here, the rest by it, on
    `threads` threads of its own (`home_threads()` when not told)."""
    executor = ThreadPoolExecutor(max_workers=threads or home_threads(), thread_name_prefix="weituan-home")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == HOME_PATH
            and scope_header(scope, b"content-length") in (None, "0")
            and scope_header(scope, b"transfer-encoding") is None
        ):  # a GET with a body goes to Django, whose request guards read it
            token = bearer_of(scope_header(scope, b"authorization"))
            if token is not None:
                asked = _Asked(token, scope.get("query_string", b""), _prologues.asgi_key(scope))
                if await asgi_answered(executor, home_timeline_answer, asked, scope, send):
                    return
        await django_app(scope, receive, send)

    return app


def with_home_timeline_wsgi(django_app: Any) -> Any:
    """Wrap a WSGI app so a bearer-token GET of the home timeline is answered here, the rest by it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO") == HOME_PATH
            and environ.get("CONTENT_LENGTH") in (None, "", "0")
        ):  # a GET with a body goes to Django, whose request guards read it
            token = bearer_of(environ.get("HTTP_AUTHORIZATION"))
            if token is not None:
                asked = _Asked(token, environ.get("QUERY_STRING", ""), _prologues.wsgi_key(environ))
                answer = home_timeline_answer(lambda: WSGIRequest(environ), asked)
                if answer is not None:
                    return wsgi_start(start_response, answer)
        return django_app(environ, start_response)

    return app
