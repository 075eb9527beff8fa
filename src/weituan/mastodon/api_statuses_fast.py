"""POST /api/v1/statuses with a bearer token, answered in front of Django (ASGI and WSGI).

Posting is the API's hottest write, and Django's request path (the middleware stack, URL resolving,
ninja's dispatch, under ASGI a thread per request and with it a new database connection) cost as much as
the post itself. Here the request runs on the WSGI server's thread, or under ASGI on a small pool of
threads of its own, through the view's own body (`status_post_answer`: the write limit, the parameters,
the Idempotency-Key, the write and the Status) with the caller the view's authentication would find
(`access_token_resolve`, the endpoint's scopes); the response is made by the same NinjaAPI (its renderer,
or its exception handlers for a refusal), and its headers by the same middleware classes' own
`process_request` and `process_response` (`core.front.MiddlewareSides`), run once per host, scheme and
language for the 200 answer and kept (`core.front.Prologues`, as the home timeline's path keeps them)
and run for any other answer; the caller is marked as seen as LastSeenMiddleware marks them.

Django answers, untouched, whatever this does not: no bearer token, or one that is unknown, revoked,
under-scoped or of a deactivated user; a NUL character in the query string, a header or the body (or
what may be one); a disallowed host; an HTTP request to be redirected to HTTPS; a
body of another type than JSON or a form, or larger than `MAX_BODY`. Once the write has begun the answer
is always made here (a refusal in the API's error shape, a crash as Django's 500), so a request is never
written twice.
"""

import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest
from django.utils import translation

from weituan.accounts.auth import require_scopes
from weituan.accounts.middleware import last_seen_due
from weituan.accounts.services import user_touch_last_seen
from weituan.accounts.tokens import access_token_resolve
from weituan.core.errors import PermissionDenied
from weituan.core.front import (
    JSON_CONTENT_TYPE,
    Answer,
    MiddlewareSides,
    Prologue,
    Prologues,
    Receive,
    Scope,
    Send,
    asgi_answered,
    bearer_of,
    body_buffered,
    connection_ready,
    scope_header,
    wsgi_start,
)
from weituan.core.request_text import nul_outside_body, raw_may_hold_nul
from weituan.core.sqlite_checkpoint import checkpoints_held

log = logging.getLogger(__name__)


STATUSES_PATH = "/api/v1/statuses"
# The scopes of the endpoint (`WRITE_STATUSES` in endpoint_auth).
WRITE_SCOPES = ("write", "write:statuses")
# A status is at most a few KiB of JSON or form; anything larger (or of another type) goes to Django.
MAX_BODY = 64 * 1024
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")
# Threads per server process for these writes under ASGI. Two let one thread's database wait overlap
# the other's Python work; more only trade the GIL back and forth.
POST_THREADS = 2


def body_acceptable(content_type: str | None, content_length: str | None) -> bool:
    """Whether a body of this type and declared length is one this path reads (else Django does)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind not in BODY_TYPES:
        return False
    try:
        length = int(content_length or "")
    except ValueError:
        return False
    return 0 <= length <= MAX_BODY


_sides: MiddlewareSides | None = None
# The middleware's verdict and headers for the 200 answer, kept per host, scheme and language as the
# home timeline's are (`core.front.Prologues`); any other answer has the middleware run for it.
_prologues = Prologues(JSON_CONTENT_TYPE, lambda request: ())
_CONTENT_TYPE = JSON_CONTENT_TYPE.encode("latin-1")


def status_post_fast(make_request: Callable[[], HttpRequest], asked: tuple[str, Any]) -> Answer | None:
    """The response to a bearer-token POST of a status (`asked`: the token and the request's prologue
    key), or None when Django should answer it."""
    global _sides
    if _sides is None:
        _sides = MiddlewareSides()
    token, key = asked
    # The thread keeps its connection between requests, checked only after an error (as the home
    # timeline's path does): Django's request signals would give it back to the pool and check it out
    # again, with a health-check round trip, on every post.
    connection_ready()
    try:
        request = make_request()
        if nul_outside_body(request) is not None or raw_may_hold_nul(request.body):
            return None  # a NUL: refused by Django (NulCharactersMiddleware), before anything is read
        prologue, kept = _prologue(request, key)
        user = _caller(request, token) if prologue is not None else None
    except Exception:
        log.exception("status fast path failed before writing; handing the request to Django")
        return None
    if user is None:
        return None
    assert prologue is not None
    # On SQLite the write queues for the write lock; the log's checkpoint waits until it is released.
    with checkpoints_held():
        return _answer(request, user, prologue, kept, _sides)


def _prologue(request: HttpRequest, key: tuple[Any, ...] | None) -> tuple[Prologue | None, bool]:
    """The request's prologue (None when Django must answer), and whether it was kept: one made now
    ran the middleware's request side for this request; with a kept one only the language is
    activated as that side activates it, and the side itself runs only if the answer is not the 200
    the prologue is for."""
    prologue = _prologues.get(key)
    if prologue is None:
        return _prologues.made(key, request), False
    translation.activate(prologue.language)
    request.LANGUAGE_CODE = prologue.language  # type: ignore[attr-defined]  # as LocaleMiddleware sets it
    return prologue, True


def _caller(request: HttpRequest, token: str) -> Any:
    """The user the endpoint's authentication finds for `token`, set on the request as it sets it; None
    for anything the endpoint would refuse or Django must handle (nothing is written before this)."""
    row = access_token_resolve(token)
    if row is None or row.user is None:
        return None
    try:
        require_scopes(request, row.scopes, WRITE_SCOPES)
    except PermissionDenied:
        return None
    request.user = row.user
    request.oauth_token = row  # type: ignore[attr-defined]
    return row.user


def _answer(
    request: HttpRequest, user: Any, prologue: Prologue, kept: bool, sides: MiddlewareSides
) -> Answer:
    from weituan.api import api_v1
    from weituan.mastodon.api_statuses import status_post_answer

    try:
        try:
            response = api_v1.create_response(request, status_post_answer(request, user), status=200)
        except Exception as exc:  # the API's handlers decide, as in ninja's dispatch
            response = api_v1.on_exception(request, exc)
    except Exception as exc:  # what Django answers for an uncaught error (logged, 500)
        response = response_for_exception(request, exc)
        del exc
    if (
        response.status_code == 200
        and not response.cookies
        and [name.lower() for name, _ in response.items()] == ["content-type"]
        and response["Content-Type"] == JSON_CONTENT_TYPE
    ):
        body = response.content
        answer = Answer(200, prologue.headers([(b"Content-Type", _CONTENT_TYPE)], body), body)
    else:
        if kept:
            sides.before(request)  # the same verdict as the kept prologue's, and what `after` reads
        answer = sides.after(request, response)
    # What LastSeenMiddleware does for the view: the caller counts as seen (at most once a window).
    if last_seen_due(user.pk):
        user_touch_last_seen(user_id=user.pk)
    return answer


def with_status_post(django_app: Any, *, threads: int = POST_THREADS) -> Any:
    """Wrap an ASGI app so a bearer-token POST of a status is answered here, the rest by it."""
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="weituan-post")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == STATUSES_PATH:
            token = bearer_of(scope_header(scope, b"authorization"))
            if token is not None and body_acceptable(
                scope_header(scope, b"content-type"), scope_header(scope, b"content-length")
            ):
                body, receive = await body_buffered(receive, MAX_BODY)
                asked = (token, _prologues.asgi_key(scope))
                if body is not None and await asgi_answered(
                    executor, status_post_fast, asked, scope, send, body
                ):
                    return
        await django_app(scope, receive, send)

    return app


def with_status_post_wsgi(django_app: Any) -> Any:
    """Wrap a WSGI app so a bearer-token POST of a status is answered here, the rest by it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO") == STATUSES_PATH:
            token = bearer_of(environ.get("HTTP_AUTHORIZATION"))
            if token is not None and body_acceptable(
                environ.get("CONTENT_TYPE"), environ.get("CONTENT_LENGTH")
            ):
                # Read once; Django gets the same bytes if it is to answer after all.
                body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
                environ["wsgi.input"] = io.BytesIO(body)
                asked = (token, _prologues.wsgi_key(environ))
                answer = status_post_fast(lambda: WSGIRequest(environ), asked)
                if answer is not None:
                    return wsgi_start(start_response, answer)
                environ["wsgi.input"] = io.BytesIO(body)
        return django_app(environ, start_response)

    return app
