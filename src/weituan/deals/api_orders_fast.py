"""POST /api/v1/deals/{id}/orders with a bearer token, answered in front of Django (ASGI and WSGI).

A flash sale is a flood of these, and Django's request path (the middleware stack, URL resolving,
under ASGI a thread per request) cost a good part of each. Here the request is answered on the WSGI
server's thread or, under ASGI, on a small pool of threads of its own. A solo order whose body the
endpoint's schema accepts is answered from the endpoint's own parts without ninja's per-request
machinery (`_Direct`: the bearer token and its scopes, read with the deal in one statement, the
order, the 201 body as ninja renders it, a refusal through the API's exception handlers); any other
request of this path goes to the endpoint's ninja view. The headers come from the same middleware classes' own `process_request` and
`process_response` (security, locale, common, frame options, content security policy), and the caller
is marked as seen as LastSeenMiddleware marks them. Responses are byte for byte Django's.

Django answers, untouched, a request without a bearer token, one with a NUL character in its query
string, a header or its body (or what may be one), a disallowed host, an HTTP request to be
redirected to HTTPS, and a body that is not JSON or is larger than `MAX_BODY`. Once the view has
started the answer is always made here (an uncaught error as Django's 500), so an order is never
attempted twice for one request.
"""

import asyncio
import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, cast

import pydantic
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from django.urls import resolve, set_urlconf
from django.utils import translation
from django.utils.log import log_response
from ninja import NinjaAPI
from ninja.parser import Parser

from weituan.accounts.auth import BearerTokenAuth, BearerViewerAuth, api_auth
from weituan.accounts.middleware import last_seen_due, seen_user_id
from weituan.accounts.scopes import default_scopes, scopes_allow
from weituan.accounts.services import user_touch_last_seen
from weituan.accounts.tokens import access_token_viewer_params, access_token_viewer_sql
from weituan.core.front import (
    JSON_CONTENT_TYPE,
    Answer,
    MiddlewareSides,
    Prologues,
    Receive,
    Scope,
    Send,
    asgi_answered,
    asgi_send,
    bearer_of,
    body_buffered,
    connection_ready,
    scope_header,
    wsgi_start,
)
from weituan.core.request_text import nul_outside_body, query_holds_nul, raw_may_hold_nul
from weituan.deals.api import order_for_api, place_order
from weituan.deals.models import Deal, Order
from weituan.deals.schemas import OrderIn, order_body
from weituan.deals.services.checkout_read import order_checkout_read
from weituan.deals.services.combined import (
    BATCH_MOST,
    Ask,
    Placed,
    batch_place,
    combining,
    order_place_combined,
)
from weituan.deals.services.holds import order_capture

logger = logging.getLogger(__name__)

ORDERS_PATH = re.compile(r"/api/v1/deals/([0-9]{1,18})/orders")
# An order is a few dozen bytes of JSON; anything larger (or of another type) goes to Django.
MAX_BODY = 16 * 1024
# Threads per server process under ASGI: two let one thread's database wait overlap the other's
# Python work; more only trade the GIL back and forth.
ORDER_THREADS = 2


def order_request_wanted(
    path: str, authorization: str | None, content_type: str | None, content_length: str | None
) -> bool:
    """Whether this path answers the request: a bearer-token JSON POST of an order, of a sane size."""
    if ORDERS_PATH.fullmatch(path) is None or bearer_of(authorization) is None:
        return False
    if (content_type or "").split(";", 1)[0].strip().lower() != "application/json":
        return False
    try:
        return 0 <= int(content_length or "") <= MAX_BODY
    except ValueError:
        return False


class _Stack(MiddlewareSides):
    """The endpoint's view and the middleware of the Django stack that shape its response."""

    def __init__(self) -> None:
        super().__init__()
        self.view = resolve("/api/v1/deals/1/orders").func  # ninja's view of the path, for every deal id
        self.direct = _Direct.of(self.view)

    def respond(self, request: HttpRequest, deal_id: str, decided: Ask | None = None) -> HttpResponse:
        """The endpoint's response: a solo order with a valid body straight from its own parts,
        anything else from ninja's view. `decided` is the order's ask when a combined batch on the
        event loop already had it (`with_order_checkout`)."""
        if self.direct is not None:
            payload = _solo_payload(request.body)
            if payload is not None:
                return self.direct.respond(request, int(deal_id), payload, decided)
        return self.view(request, deal_id=deal_id)  # type: ignore[no-any-return]


def placed_body(placed: Placed) -> dict[str, Any]:
    """The body of an order a combined batch placed (or a retry found), as `order_body` shows the order."""
    return order_body(cast(Order, placed))


def _combines(payload: OrderIn) -> bool:
    """Whether a solo order of this body may be placed in a combined batch: paid from the wallet, not
    through a share (a share's credit is resolved the per-order way)."""
    return payload.share is None and payload.gateway in (None, "wallet")


def _solo_payload(body: bytes) -> OrderIn | None:
    """The body of a solo order as the endpoint reads it (ninja's JSON parse and the schema's
    validation); None for anything else (not JSON, not valid, a team order), which the view answers."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("team") is not None:
        return None
    try:
        return OrderIn.model_validate(data)
    except pydantic.ValidationError:
        return None


class _Direct:
    """What ninja's operation does for the endpoint, for a request whose body already validated:
    the bearer token (as its `BearerTokenAuth`, but reading only the caller's id and scopes, since a
    solo order needs no more of the user), the idempotency key header, the order, and the 201 body
    rendered as the operation renders `OrderOut`; a refusal or error as the API's exception handlers
    answer it. Made only when the operation is the one this mirrors (its auth, no throttles, its
    parser and function)."""

    def __init__(self, api: NinjaAPI, scopes: tuple[str, ...]) -> None:
        self.api = api
        self.auth = BearerViewerAuth(scopes)
        self.content_type = api.get_content_type()

    @classmethod
    def of(cls, view: Any) -> "_Direct | None":
        operations = [
            getattr(cell.cell_contents, "operations", None)
            for cell in getattr(view, "__closure__", None) or ()
        ]
        found = [operation for group in operations if group for operation in group]
        if len(found) != 1:
            return None
        operation = found[0]
        callbacks = list(operation.auth_callbacks or ())
        if (
            operation.view_func is not place_order
            or operation.methods != ["POST"]
            or operation.api is None
            or type(operation.api.parser) is not Parser
            or operation.throttle_objects
            or len(callbacks) != len(api_auth)
            or not isinstance(callbacks[0], BearerTokenAuth)
            or getattr(operation, "stream_format", None)
        ):
            return None
        scopes = callbacks[0].scopes
        return cls(operation.api, scopes if scopes is not None else default_scopes("POST"))

    def allowed(self, granted: str) -> bool:
        """Whether a token granting `granted` may place an order (as `viewer_of` checks it)."""
        return not self.auth.scopes or scopes_allow(granted, self.auth.scopes)

    def respond(
        self, request: HttpRequest, deal_id: int, payload: OrderIn, decided: Ask | None = None
    ) -> HttpResponse:
        try:
            # The token is there: the request was taken for it (`order_request_wanted`). It is read
            # with the deal, in one statement, or with the other orders of a combined batch.
            key = request.headers.get("Idempotency-Key")
            params = access_token_viewer_params(bearer_of(request.META.get("HTTP_AUTHORIZATION")) or "")
            data = None
            if decided is not None:
                data = self.decided(request, decided)
            elif params is not None and _combines(payload) and combining():
                data = self.combined(request, deal_id, payload, str(params[0]), key or None)
            if data is not None:
                return self.created(request, data)
            found, deal = (None, None)
            if params is not None:
                found, deal = _checkout_read(params, deal_id, key or None)
            buyer = self.auth.viewer_of(request, found)
            request.auth = buyer  # type: ignore[attr-defined]
            order = order_for_api(deal_id, buyer, payload, key, deal=deal)
            data = order_body(order)
        except Exception as exc:  # as the operation answers its view's exceptions
            return self.api.on_exception(request, exc)
        return self.created(request, data)

    def combined(
        self, request: HttpRequest, deal_id: int, payload: OrderIn, token_hash: str, key: str | None
    ) -> dict[str, Any] | None:
        """The body of the order placed in a combined batch (`services.combined`), or None when the
        order is to be placed the per-order way (nothing was written for it)."""
        ask = Ask(
            token_hash=token_hash, deal_id=deal_id, quantity=payload.quantity,
            gift_quantity=payload.gift_quantity, unit_price=payload.unit_price, client_key=key,
            allowed=self.allowed,
        )  # fmt: skip
        order_place_combined(ask)
        return self.decided(request, ask)

    def decided(self, request: HttpRequest, ask: Ask) -> dict[str, Any] | None:
        """The body of the order a combined batch placed for `ask` (the error it decided raised), or
        None when the order is to be placed the per-order way."""
        if ask.user_id is None or (ask.placed is None and ask.error is None):
            return None
        request.auth = self.auth.viewer_of(request, (ask.user_id, ask.scopes))  # type: ignore[attr-defined]
        if ask.error is not None:
            raise ask.error
        assert ask.placed is not None
        if not ask.placed.settled:
            return placed_body(ask.placed)
        # The deal tipped while the batch was written: the order is paid at once, as `order_place` pays it.
        order_capture(order_id=ask.placed.id)
        return order_body(Order.objects.select_related("deal").get(id=ask.placed.id))

    def created(self, request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
        """The 201 of an order's body, as the operation renders `OrderOut`."""
        # What OrderOut hands the renderer: the body's times as datetimes (rendered as the API's
        # JSON encoder writes them).
        for name in ("created_at", "captured_at"):
            if data[name] is not None:
                data[name] = datetime.fromisoformat(data[name])
        if data["refund"] is not None:  # a retry answered with an order refunded since
            data["refund"]["requested_at"] = datetime.fromisoformat(data["refund"]["requested_at"])
        return HttpResponse(self.content(request, data), status=201, content_type=self.content_type)

    def content(self, request: HttpRequest | None, data: dict[str, Any]) -> bytes:
        """The 201's body, as the API's renderer makes it (which reads nothing of the request)."""
        content = self.api.renderer.render(request, data, response_status=201)  # type: ignore[arg-type]
        return content if isinstance(content, bytes) else str(content).encode()


def _checkout_read(
    params: Sequence[Any], deal_id: int, key: str | None
) -> tuple[tuple[int, str] | None, Deal | None]:
    """`order_checkout_read` for the caller's token. It is the request's first statement on the thread's
    kept connection (see `connection_ready`), and nothing is written yet: a connection the database
    ended since the thread's last request (a database restart, a failover, an operator ending
    backends) fails it, and the read is made once more on a fresh connection instead of answering a
    buyer 500 for the database's housekeeping."""
    read = partial(
        order_checkout_read,
        token_sql=access_token_viewer_sql(),
        token_params=params,
        deal_id=deal_id,
        client_key=key,
    )
    try:
        return read()
    except (OperationalError, InterfaceError):
        db = connections[DEFAULT_DB_ALIAS]
        if db.in_atomic_block or db.is_usable():
            raise  # the database refused the statement itself, or a caller's transaction holds it
        db.close()
        return read()


_stack: _Stack | None = None
_prologues = Prologues(JSON_CONTENT_TYPE, lambda request: (), status=201)
_CONTENT_TYPE = (b"Content-Type", JSON_CONTENT_TYPE.encode("latin-1"))


def _plain_created(response: HttpResponse) -> bool:
    """Whether `response` is a 201 of the API's JSON with no header or cookie but its content type:
    the answer a kept prologue completes."""
    return (
        response.status_code == 201
        and type(response) is HttpResponse
        and not response.cookies
        and len(response.headers) == 1
        and response.headers.get("Content-Type") == JSON_CONTENT_TYPE
    )


def order_answer(
    make_request: Callable[[], HttpRequest], asked: tuple[str, Any, Ask | None]
) -> Answer | None:
    """The response to an order request (`asked`: its deal id, prologue key, and its ask when a
    combined batch already had it), or None when Django should answer it (nothing ran yet)."""
    global _stack
    if _stack is None:
        _stack = _Stack()
    stack = _stack
    deal_id, key, decided = asked
    connection_ready()
    set_urlconf(None)  # the default resolver for this thread, as Django sets it per request
    request = make_request()
    if nul_outside_body(request) is not None or raw_may_hold_nul(request.body):
        return None  # a NUL: refused by Django (NulCharactersMiddleware), before anything is read
    # The middleware's request side ran for this request (by the prologue's making), or its verdict
    # and language are the kept prologue's.
    prologue = _prologues.get(key)
    if prologue is None:
        prologue = _prologues.made(key, request)  # None for a host outside ALLOWED_HOSTS, a redirect
        if prologue is None:
            return None  # Django answers it in its usual shape
        prepared = True
    else:
        translation.activate(prologue.language)  # as LocaleMiddleware's request side does
        prepared = False
    try:
        response = stack.respond(request, deal_id, decided)
    except Exception as exc:  # what Django answers for an uncaught error (logged, 500)
        response = response_for_exception(request, exc)
        del exc
    if _plain_created(response):
        body = response.content
        answer = Answer(201, prologue.headers([_CONTENT_TYPE], body), body)
    else:
        if not prepared:  # what the response side reads of the request (its verdict is the kept one)
            stack.before(request)
        answer = stack.after(request, response)
    if response.status_code >= 400:  # logged as Django's handler logs it
        log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
    request.close()
    # What LastSeenMiddleware does for the view: the caller counts as seen (at most once a window).
    user_id = seen_user_id(request)
    if user_id is not None and last_seen_due(user_id):
        user_touch_last_seen(user_id=user_id)
    return answer


def with_order_checkout(django_app: Any, *, threads: int = ORDER_THREADS) -> Any:
    """Wrap an ASGI app so a bearer-token POST of an order is answered here, the rest by it."""
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="weituan-order")
    lines = _LoopLines(ThreadPoolExecutor(max_workers=BATCH_THREADS, thread_name_prefix="weituan-batch"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and order_request_wanted(
                scope["path"],
                scope_header(scope, b"authorization"),
                scope_header(scope, b"content-type"),
                scope_header(scope, b"content-length"),
            )
        ):
            body, receive = await body_buffered(receive, MAX_BODY)
            if body is not None:
                deal_id, key = scope["path"].split("/")[4], _prologues.asgi_key(scope)
                ask = _loop_ask(scope, body, int(deal_id), key)
                if ask is not None:
                    await lines.place(ask)
                    answer = _loop_answer(ask, key, executor)
                    if answer is not None:
                        await asgi_send(send, answer)
                        return
                asked = (deal_id, key, ask)
                if await asgi_answered(executor, order_answer, asked, scope, send, body):
                    return
        await django_app(scope, receive, send)

    return app


# Threads per server process under ASGI that write combined batches (one batch of a deal at a time).
BATCH_THREADS = 2


def _loop_ask(scope: Scope, body: bytes, deal_id: int, key: Any) -> Ask | None:
    """On the event loop: the ask of a solo wallet order to be placed in a combined batch, or None for
    a request answered on the threads as any other. Only a request the threads would answer here is
    taken: its host, scheme and language seen before (their prologue kept), no NUL anywhere, a body the
    schema accepts, one Idempotency-Key at most."""
    stack = _stack
    if stack is None or stack.direct is None or key is None or _prologues.get(key) is None:
        return None
    if not combining() or raw_may_hold_nul(body) or query_holds_nul(scope.get("query_string", b"")):
        return None
    idempotency_key: str | None = None
    bearers = 0
    for name, value in scope["headers"]:
        if 0 in value:
            return None
        if name == b"authorization":
            bearers += 1
        elif name == b"idempotency-key":
            if idempotency_key is not None:
                return None  # Django joins repeated headers: answered on the threads
            idempotency_key = value.decode("latin-1")
    if bearers != 1:
        return None
    payload = _solo_payload(body)
    params = access_token_viewer_params(bearer_of(scope_header(scope, b"authorization")) or "")
    if payload is None or params is None or not _combines(payload):
        return None
    return Ask(
        token_hash=str(params[0]), deal_id=deal_id, quantity=payload.quantity,
        gift_quantity=payload.gift_quantity, unit_price=payload.unit_price,
        client_key=idempotency_key or None, allowed=stack.direct.allowed,
    )  # fmt: skip


def _loop_answer(ask: Ask, key: Any, executor: ThreadPoolExecutor) -> Answer | None:
    """On the event loop: the 201 of an order its batch placed, made as the threads make it (the kept
    prologue's headers, the renderer's bytes), and the caller marked as seen; None for any other
    outcome, which the threads answer (a refusal, an error, an order to be paid at once, an order to be
    placed the per-order way)."""
    stack, prologue, placed = _stack, _prologues.get(key), ask.placed
    if stack is None or stack.direct is None or prologue is None or ask.user_id is None:
        return None
    if placed is None or placed.settled or ask.error is not None:
        return None
    data = placed_body(placed)
    data["created_at"] = placed.created_at  # what OrderOut hands the renderer
    body = stack.direct.content(None, data)
    if last_seen_due(ask.user_id):  # marked as the threads mark the caller; its rare write on one of them
        executor.submit(_seen, ask.user_id)
    return Answer(201, prologue.headers([_CONTENT_TYPE], body), body)


def _seen(user_id: int) -> None:
    try:
        connection_ready()
        user_touch_last_seen(user_id=user_id)
    except Exception:  # a mark missed is made on the caller's next request
        logger.exception("last seen of user %s not marked", user_id)


class _LoopLines:
    """Per server process, on its event loop: the asks of each deal waiting for a batch, and the deals
    whose batch is being written (one at a time per deal, on `executor`'s threads). A batch takes
    every ask of its deal waiting when it starts; the asks arriving meanwhile make the next."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.waiting: dict[int, list[tuple[Ask, asyncio.Future[None]]]] = {}
        self.busy: set[int] = set()

    async def place(self, ask: Ask) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self.waiting.setdefault(ask.deal_id, []).append((ask, done))
        if ask.deal_id not in self.busy:
            self._start(loop, ask.deal_id)
        await done

    def _start(self, loop: asyncio.AbstractEventLoop, deal_id: int) -> None:
        queued = self.waiting.pop(deal_id)
        batch, rest = queued[:BATCH_MOST], queued[BATCH_MOST:]
        if rest:
            self.waiting[deal_id] = rest
        self.busy.add(deal_id)
        try:
            running = loop.run_in_executor(self.executor, batch_place, [ask for ask, _ in batch])
        except BaseException:
            # Not started (the threads shut down): each order is answered on the threads as any other.
            self._finished(loop, deal_id, batch)
            raise
        running.add_done_callback(lambda _: self._finished(loop, deal_id, batch))

    def _finished(
        self, loop: asyncio.AbstractEventLoop, deal_id: int, batch: list[tuple[Ask, asyncio.Future[None]]]
    ) -> None:
        self.busy.discard(deal_id)
        for _, done in batch:
            if not done.done():
                done.set_result(None)
        if self.waiting.get(deal_id):
            self._start(loop, deal_id)


def with_order_checkout_wsgi(django_app: Any) -> Any:
    """Wrap a WSGI app so a bearer-token POST of an order is answered here, the rest by it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "POST" and order_request_wanted(
            environ.get("PATH_INFO", ""),
            environ.get("HTTP_AUTHORIZATION"),
            environ.get("CONTENT_TYPE"),
            environ.get("CONTENT_LENGTH"),
        ):
            # Read once; Django gets the same bytes if it is to answer after all.
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            environ["wsgi.input"] = io.BytesIO(body)
            asked = (environ["PATH_INFO"].split("/")[4], _prologues.wsgi_key(environ), None)
            answer = order_answer(lambda: WSGIRequest(environ), asked)
            if answer is not None:
                return wsgi_start(start_response, answer)
            environ["wsgi.input"] = io.BytesIO(body)
        return django_app(environ, start_response)

    return app
