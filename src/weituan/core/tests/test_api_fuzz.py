"""The documented API fuzzed from its own OpenAPI documents: every operation of /api/v1/ and /api/v2/
gets generated requests, valid and deliberately invalid, and every answer must keep the API's rule.

- no 5xx, ever;
- every 4xx is JSON with Mastodon's `error` (a message) and a stable `code`;
- where the document declares a response's schema, the answer conforms to it;
- a write that is refused (4xx) changes nothing in the database.

The application is Django's WSGI handler with the fast paths in front, as `weituan serve --server
granian` runs it, driven in process: the test database is the one it writes. The caller is a verified
merchant with an OAuth token; the world holds another merchant's live deal, posts and follows, so that
some generated ids name real objects.

Bounded and deterministic by default. `WEITUAN_API_FUZZ_EXAMPLES=N` asks N examples per operation and
`WEITUAN_API_FUZZ_SEED=random` (or a number) makes the run random (see DEVELOPERS.md).
"""

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import schemathesis
from django.apps import apps
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import make_user

# Imported whole before Hypothesis runs: the analytics store's flusher thread imports it (through chDB)
# on first use, and Hypothesis, which looks numpy up in sys.modules, must never find it half-imported.
with contextlib.suppress(ImportError):
    import numpy  # noqa: F401

EXAMPLES = int(os.environ.get("WEITUAN_API_FUZZ_EXAMPLES") or 6)
_SEED_ASKED = os.environ.get("WEITUAN_API_FUZZ_SEED", "")
# None: derandomized, the same examples on every run. A random seed is drawn once and named in every
# failure, so that the run can be repeated with WEITUAN_API_FUZZ_SEED set to it.
SEED = secrets.randbelow(2**32) if _SEED_ASKED == "random" else int(_SEED_ASKED) if _SEED_ASKED else None


def _config() -> Any:
    generation: dict[str, Any] = {
        "mode": "all",
        "max-examples": EXAMPLES,
        "deterministic": SEED is None,
        # Authorization is the world's caller's token, sent on every request.
        "with-security-parameters": False,
        "database": "none",
        # Text with a NUL is refused everywhere, before any endpoint (weituan.middleware): no string
        # of the documents holds one, and core/tests/test_nul_characters.py covers the refusal.
        "allow-x00": False,
    }
    document: dict[str, Any] = {"generation": generation}
    if SEED is not None:
        document["seed"] = SEED
    return schemathesis.Config.from_dict(document)


class _InTestTransaction:
    """The WSGI application as Django's test client runs one: the requests share the test's database
    connection, and with it the transaction the test rolls back (else each request's end would close
    the connection, which PostgreSQL's pool refuses to do inside the test's atomic block)."""

    def __init__(self) -> None:
        from weituan.wsgi import application

        self.application = application

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            answer = self.application(environ, start_response)
            try:
                return list(answer)
            finally:
                if hasattr(answer, "close"):
                    answer.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


APPLICATION = _InTestTransaction()
schema_v1 = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", APPLICATION, config=_config())
schema_v2 = schemathesis.openapi.from_wsgi("/api/v2/openapi.json", APPLICATION, config=_config())


@dataclass
class World:
    token: str
    caller: Any


@pytest.fixture
def world(db: Any, settings: Any) -> World:
    """A merchant calling with a token, another merchant's live deal, posts, follows and an order."""
    from weituan.accounts.tokens import access_token_issue
    from weituan.deals.services.deals import DealInput, deal_create, deal_publish
    from weituan.deals.services.wallet import wallet_top_up
    from weituan.microblog.services.interactions import comment_create, like_add
    from weituan.microblog.services.posts import post_create, repost_create
    from weituan.microblog.services.relations import follow_create

    settings.RATE_LIMIT_WRITES_PER_MINUTE = 1_000_000
    caller = make_user("fuzzer", display_name="Fuzzer 模糊", merchant=True)
    shop = make_user("xiaolongbao", display_name="小笼包", merchant=True)
    friend = make_user("alice", display_name="Alice 爱丽丝")
    now = timezone.now()
    deal = deal_create(
        merchant=shop,
        data=DealInput(
            title="双人火锅套餐",
            list_price=20000,
            deal_price=9900,
            max_quantity=10,
            tipping_point=3,
            per_user_limit=2,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=2),
        ),
    )
    deal_publish(deal_id=deal.id, by=shop)
    for follower, followee in ((caller, shop), (caller, friend), (friend, caller), (friend, shop)):
        follow_create(follower=follower, followee_id=followee.pk)
    post = post_create(author=shop, text="今天 #火锅# 半价 @fuzzer", deal_id=deal.id)
    mine = post_create(author=caller, text="Hello #tag from the fuzzer")
    repost_create(reposter=friend, post_id=post.pk, comment="冲")
    comment_create(author=friend, post_id=mine.pk, text="nice")
    like_add(user=friend, post_id=mine.pk)
    wallet_top_up(user=caller, amount=100_000)
    raw, _ = access_token_issue(user=caller)
    return World(token=raw, caller=caller)


# Tables a refused request rightly writes: the rate limits count every request, refused or not.
BOOKKEEPING = {"core_ratelimitwindow"}


def _counts() -> dict[str, int]:
    """Rows per table of the project's apps: what a refused write must leave as it was (one query)."""
    tables = sorted(
        model._meta.db_table
        for model in apps.get_models()
        if model.__module__.startswith("weituan.") and model._meta.db_table not in BOOKKEEPING
    )
    quote = connection.ops.quote_name
    counts = ", ".join(f"(SELECT COUNT(*) FROM {quote(table)})" for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return dict(zip(tables, cursor.fetchone(), strict=True))


class _ServerErrors(logging.Handler):
    """Keeps the tracebacks Django logs for the requests it answered 500, for the failure's message."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_errors() -> Iterator[_ServerErrors]:
    handler = _ServerErrors()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _error_shape_problems(response: Any) -> str | None:
    if response.status_code < 400:
        return None
    content_type = next(
        (values[0] for name, values in response.headers.items() if name.lower() == "content-type"), ""
    )
    if "json" not in content_type:
        return f"{response.status_code} answered as {content_type!r}, not JSON"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return f"{response.status_code} answered with a body that is not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict):
        return f"{response.status_code} answered {body!r}, not an object"
    if not isinstance(body.get("error"), str) or not body["error"]:
        return f"{response.status_code} has no `error` message: {body!r}"
    if not isinstance(body.get("code"), str) or not body["code"]:
        return f"{response.status_code} has no `code`: {body!r}"
    return None


WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# The one 5xx an operation answers by design: the WSGI server (the application fuzzed here) serves no
# streams, and says so (documented); the ASGI server's streams are fuzzed below
# (`test_streaming_paths_under_asgi`).
DELIBERATE_5XX = {("GET", "/api/v1/streaming"): 501}


# Operations whose valid-looking requests may still be refused, and why; for them the check that a
# schema-valid request is accepted is replaced by the narrower one beside it.
#
# Inputs that the document cannot describe: an image upload (no schema says "a picture"), the raw
# batch of events (read before any schema, so that each event is refused on its own). A request built
# from the document alone lacks them, and is refused for it.
UNDESCRIBED_INPUTS = {"POST /api/v1/media", "POST /api/v2/media", "POST /api/v1/events"}
# Business rules over several fields or over the world, which no per-field schema states: a deal's
# window must end after it starts, team price and team size go together; an order needs stock, quota,
# a known gateway and money in the wallet; nobody follows, blocks or mutes themselves; a status has
# words or pictures within its weighted length, pictures the author uploaded, and replies to or quotes
# a status there is; an edit keeps a status's pictures and the length rules; only one's own original or
# quote is pinned, five at most; an application's redirect URIs are absolute and its scopes known; a display name
# and a bio fit their lengths (50 and 500 characters, a number counted as its digits); a list's title is
# not blank and fits 50 characters, a user keeps at most 50 lists, and only accounts they follow join one;
# an account has at most 100 filters, a filter at most 50 keywords (those it holds and those added) and 50
# statuses, a keyword changed through a filter is its own, a status is filtered once and must be one the
# caller sees, and a v1 filter sharing its filter with other keywords cannot change that filter.
# Refused with 400, 402 or 422 and a code naming the rule.
RULED_INPUTS = {
    "POST /api/v1/deals",
    "POST /api/v1/deals/{deal_id}/orders",
    "POST /api/v1/accounts/{account_id}/follow",
    "POST /api/v1/accounts/{account_id}/block",
    "POST /api/v1/accounts/{account_id}/mute",
    "POST /api/v1/statuses",
    "PUT /api/v1/statuses/{status_id}",
    "POST /api/v1/statuses/{status_id}/pin",
    "POST /api/v1/apps",
    "PATCH /api/v1/accounts/update_credentials",
    "POST /api/v1/filters",
    "PUT /api/v1/filters/{keyword_id}",
    "POST /api/v2/filters",
    "PUT /api/v2/filters/{filter_id}",
    "POST /api/v2/filters/{filter_id}/keywords",
    "POST /api/v2/filters/{filter_id}/statuses",
    "POST /api/v1/lists",
    "PUT /api/v1/lists/{list_id}",
    "POST /api/v1/lists/{list_id}/accounts",
}


def _key_used_again(case: Any, response: Any) -> bool:
    """A valid request refused because its generated Idempotency-Key already served another one: the
    documented answer (the key's description says so), which no schema of one request can foresee."""
    if response.status_code != 422 or not (case.headers or {}).get("Idempotency-Key"):
        return False
    return bool(orjson.loads(response.content).get("code") == "idempotency_mismatch")


def _exercise(case: Any, world: World, server_errors: _ServerErrors) -> None:
    writes = case.method.upper() in WRITES
    before = _counts() if writes else None
    server_errors.records.clear()
    auth = {"Authorization": f"Bearer {world.token}"}
    response = case.call(headers=auth)
    deliberate = DELIBERATE_5XX.get((case.method.upper(), case.operation.path))
    if response.status_code >= 500 and response.status_code != deliberate:
        logged = "\n".join(logging.Formatter().format(record) for record in server_errors.records)
        raise AssertionError(
            f"{case.method} {case.formatted_path} answered {response.status_code}:"
            f" {response.content[:300]!r}\n{case.as_curl_command()}\n{logged}"
        )
    problem = _error_shape_problems(response)
    assert problem is None, f"{case.method} {case.formatted_path}: {problem}\n{case.as_curl_command()}"
    if writes and 400 <= response.status_code < 500:
        after = _counts()
        changed = {t: (before[t], after[t]) for t in after if before and before.get(t) != after[t]}
        assert not changed, (
            f"{case.method} {case.formatted_path} was refused ({response.status_code}) but changed"
            f" row counts {changed}\n{case.as_curl_command()}"
        )
    label = f"{case.method.upper()} {case.operation.path}"
    excluded = []
    if deliberate is not None:
        excluded.append(not_a_server_error)  # checked above, with the one deliberate status allowed
    if label in UNDESCRIBED_INPUTS or label in RULED_INPUTS or _key_used_again(case, response):
        excluded.append(positive_data_acceptance)
    if label in RULED_INPUTS and case.meta is not None and case.meta.generation.mode.is_positive:
        assert response.status_code < 400 or response.status_code in (
            400,
            401,
            402,
            403,
            404,
            409,
            422,
            429,
        ), f"{label} refused a valid request with {response.status_code}: {response.content[:300]!r}"
    case.validate_response(response, headers=auth, excluded_checks=excluded)


FUZZ_SETTINGS = hypothesis_settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _exercise_seeded(case: Any, world: World, server_errors: _ServerErrors) -> None:
    try:
        _exercise(case, world, server_errors)
    except Exception as failure:
        if SEED is not None:
            failure.add_note(
                f"Run again with WEITUAN_API_FUZZ_SEED={SEED} WEITUAN_API_FUZZ_EXAMPLES={EXAMPLES}"
            )
        raise


@schema_v1.parametrize()
@FUZZ_SETTINGS
def test_api_v1(case: Any, world: World, server_errors: _ServerErrors) -> None:
    _exercise_seeded(case, world, server_errors)


@schema_v2.parametrize()
@FUZZ_SETTINGS
def test_api_v2(case: Any, world: World, server_errors: _ServerErrors) -> None:
    _exercise_seeded(case, world, server_errors)


STREAM_PATHS = st.sampled_from(
    ["", "health", "user", "user/notification", "public", "public/local", "hashtag", "hashtag/local", "list"]
) | st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30)


_READERS = itertools.count()
# The streaming fuzz tests run many small examples against the ASGI application, each with a reader.
STREAMING_FUZZ = hypothesis_settings(
    deadline=None,
    max_examples=EXAMPLES * 10,
    derandomize=SEED is None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.django_db(transaction=True)
@STREAMING_FUZZ
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "DELETE"]),
    stream=STREAM_PATHS,
    query=st.dictionaries(
        st.sampled_from(["tag", "access_token", "stream", "list"]), st.text(max_size=40), max_size=3
    ),
    token=st.sampled_from(["", "the merchant's", "not-a-token", "x" * 300]),
)
def test_streaming_paths_under_asgi(method: str, stream: str, query: dict[str, str], token: str) -> None:
    """The ASGI server's answers under /api/v1/streaming (served in front of Django): every refusal is a
    JSON 4xx with `error` and `code`; what opens is a stream of events (ended here at once by the client
    going away), or the health check's `OK`."""
    from weituan.asgi import application

    raw = ""
    if token == "the merchant's":
        raw, _ = access_token_issue(user=make_user(f"fuzz{next(_READERS)}"), scopes="read")
    elif token:
        raw = token
    path = "/api/v1/streaming" + ("/" + stream if stream else "")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(query).encode(),
        "headers": [(b"host", b"testserver")]
        + ([(b"authorization", f"Bearer {raw}".encode())] if raw else []),
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(application(scope, receive, send))
    start, body = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
    status = start["status"]
    headers = dict(start["headers"])
    assert status < 500, f"{method} {path}?{scope['query_string']!r} answered {status}: {body[:300]!r}"
    if status == 200:
        assert body == b"OK" or headers[b"content-type"].startswith(b"text/event-stream"), body[:300]
        return
    problem = _error_body_problem(body)
    assert problem is None, f"{method} {path}?{scope['query_string']!r}: {problem}"


def _error_body_problem(body: bytes) -> str | None:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"not JSON: {body[:200]!r}"
    if not isinstance(answer, dict) or not answer.get("error") or not answer.get("code"):
        return f"no `error` and `code`: {answer!r}"
    return None


_STREAM_NAMES = st.sampled_from(
    [
        "user",
        "user:notification",
        "public",
        "public:local",
        "public:media",
        "hashtag",
        "hashtag:local",
        "list",
    ]
) | st.text(max_size=20)
_JSON_VALUES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
WEBSOCKET_MESSAGES = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["subscribe", "unsubscribe"]) | st.text(max_size=10)},
        optional={"stream": _STREAM_NAMES | _JSON_VALUES, "tag": _JSON_VALUES, "list": _JSON_VALUES},
    ).map(lambda message: {"text": orjson.dumps(message).decode()}),
    st.text(max_size=60).map(lambda text: {"text": text}),
    st.binary(max_size=20).map(lambda data: {"bytes": data}),
)


@pytest.mark.django_db(transaction=True)
@STREAMING_FUZZ
@given(messages=st.lists(WEBSOCKET_MESSAGES, max_size=6))
def test_websocket_messages_under_asgi(messages: list[dict[str, Any]]) -> None:
    """Whatever a WebSocket client sends on /api/v1/streaming, the connection stays open and every answer
    is an error with a 4xx `status` and a `code`, or nothing (a subscription made or dropped)."""
    from weituan.asgi import application

    token, _ = access_token_issue(user=make_user(f"fuzz{next(_READERS)}"), scopes="read")
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/api/v1/streaming",
        "raw_path": b"/api/v1/streaming",
        "query_string": urlencode({"access_token": token}).encode(),
        "headers": [(b"host", b"testserver")],
        "subprotocols": [],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "extensions": {"websocket.http.response": {}},
    }
    incoming = [
        {"type": "websocket.connect"},
        *({"type": "websocket.receive", **message} for message in messages),
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[dict[str, Any]] = []

    async def converse() -> None:
        waiting: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in incoming:
            waiting.put_nowait(message)

        async def receive() -> dict[str, Any]:
            return await waiting.get()

        async def send(message: Any) -> None:
            sent.append(dict(message))

        await asyncio.wait_for(application(scope, receive, send), 30)

    asyncio.run(converse())
    assert sent[0] == {"type": "websocket.accept", "subprotocol": None}
    for message in sent[1:]:
        assert message["type"] == "websocket.send", message
        answer = orjson.loads(message["text"])
        assert 400 <= answer["status"] < 500 and answer["error"] and answer["code"], answer
