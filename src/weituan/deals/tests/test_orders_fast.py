"""Orders answered in front of Django: the same status, headers and bytes as through the Django stack,
for a purchase, a replay and every refusal, and the requests it must leave to Django left to it."""

import asyncio
import json
from typing import Any

import pytest
from django.core import signals
from django.db import close_old_connections, connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from weituan.accounts.models import AccessToken, User
from weituan.accounts.tokens import access_token_issue, access_token_revoke
from weituan.core.testing import CountingWSGI
from weituan.deals import api_orders_fast
from weituan.deals.api_orders_fast import with_order_checkout, with_order_checkout_wsgi
from weituan.deals.models import Order

pytestmark = pytest.mark.django_db


Reply = tuple[str, list[tuple[str, str]], bytes]


def _post(app: Any, path: str, body: Any, **headers: Any) -> Reply:
    content_type = headers.pop("content_type", "application/json")
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    environ = RequestFactory().post(path, data=data, content_type=content_type, **headers).environ
    started: list[Any] = []
    # As Django's test client does: the test's transaction must outlive the request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        answer = b"".join(app(environ, lambda status, pairs: started.extend([status, pairs])))
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started[0], list(started[1]), answer


@pytest.fixture
def apps() -> tuple[CountingWSGI, Any]:
    django = CountingWSGI()
    return django, with_order_checkout_wsgi(django)


def _bearer(raw: str, **more: Any) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}", **more}


def _same_refusal(apps: tuple[CountingWSGI, Any], path: str, body: Any, code: str, **headers: Any) -> Reply:
    """Send the request through Django, then through the fast path: both answers must be identical."""
    django, fast = apps
    through_django = _post(django, path, body, **headers)
    calls = django.calls
    through_fast = _post(fast, path, body, **headers)
    assert django.calls == calls, "the fast path handed the request to Django"
    assert through_fast == through_django
    assert json.loads(through_fast[2])["code"] == code
    return through_fast


def _but_length(reply: Reply) -> list[tuple[str, str]]:
    return [(name, value) for name, value in reply[1] if name != "Content-Length"]


def test_a_purchase_and_its_replay_answer_as_the_view(apps, shopper, outsider, make_live_deal, fund) -> None:
    django, fast = apps
    deal = make_live_deal(max_quantity=10, per_user_limit=5)
    fund(shopper)
    fund(outsider)
    path = f"/api/v1/deals/{deal.id}/orders"
    body = {"quantity": 1, "unit_price": deal.deal_price}
    mine, _ = access_token_issue(user=shopper)
    theirs, _ = access_token_issue(user=outsider)
    viewed = _post(django, path, body, **_bearer(theirs, HTTP_IDEMPOTENCY_KEY="k-1"))
    answered = _post(fast, path, body, **_bearer(mine, HTTP_IDEMPOTENCY_KEY="k-1"))
    assert django.calls == 1
    assert answered[0] == viewed[0] == "201 Created"
    # Two orders: only their ids and times differ.
    one, other = json.loads(viewed[2]), json.loads(answered[2])
    assert other["id"] != one["id"]
    for changing in ("id", "created_at"):
        one.pop(changing), other.pop(changing)
    assert one == other
    assert [name for name, _ in answered[1]] == [name for name, _ in viewed[1]]
    assert [pair for pair in answered[1] if pair[0] != "Content-Length"] == [
        pair for pair in viewed[1] if pair[0] != "Content-Length"
    ]
    # A retry of either, through either path, is the first answer byte for byte, and buys nothing.
    assert _post(fast, path, body, **_bearer(theirs, HTTP_IDEMPOTENCY_KEY="k-1")) == viewed
    assert _post(django, path, body, **_bearer(mine, HTTP_IDEMPOTENCY_KEY="k-1")) == answered
    assert Order.objects.filter(deal=deal).count() == 2


def test_every_refusal_answers_as_the_view(apps, shopper, outsider, merchant, make_live_deal, fund) -> None:
    deal = make_live_deal(max_quantity=3, per_user_limit=1)
    fund(shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    raw, _ = access_token_issue(user=shopper)
    body = {"quantity": 1}
    _same_refusal(apps, path, {"quantity": 1, "unit_price": 1}, "price_mismatch", **_bearer(raw))
    _same_refusal(apps, path, {"quantity": 0}, "invalid", **_bearer(raw))
    _same_refusal(apps, path, "{not json", "http_error", **_bearer(raw))
    _same_refusal(apps, path, {"quantity": 2}, "per_user_limit", **_bearer(raw))
    _same_refusal(apps, path, {"quantity": 1, "gateway": "paypal"}, "unknown_gateway", **_bearer(raw))
    # A key the buyer's other writes used (a top-up here) names another request.
    topped = _post(
        apps[0], "/api/v1/wallet/top_up", {"amount": 1}, **_bearer(raw, HTTP_IDEMPOTENCY_KEY="used")
    )
    assert topped[0] == "200 OK"
    _same_refusal(apps, path, body, "idempotency_mismatch", **_bearer(raw, HTTP_IDEMPOTENCY_KEY="used"))
    _same_refusal(apps, "/api/v1/deals/999999/orders", body, "not_found", **_bearer(raw))
    _same_refusal(apps, path, body, "invalid_token", **_bearer("not-a-token"))
    reader, _ = access_token_issue(user=shopper, scopes="read")
    _same_refusal(apps, path, body, "insufficient_scope", **_bearer(reader))
    poor, _ = access_token_issue(user=outsider)
    _same_refusal(apps, path, body, "insufficient_balance", **_bearer(poor))
    own, _ = access_token_issue(user=merchant)
    _same_refusal(apps, path, body, "own_deal", **_bearer(own))
    # In another language too: the message and Content-Language follow Accept-Language.
    _same_refusal(
        apps, path, {"quantity": 2}, "per_user_limit", **_bearer(raw, HTTP_ACCEPT_LANGUAGE="zh-hans")
    )
    # A key used for one request cannot be replayed for another.
    fast = apps[1]
    assert _post(fast, path, body, **_bearer(raw, HTTP_IDEMPOTENCY_KEY="once"))[0] == "201 Created"
    _same_refusal(apps, path, {"quantity": 1, "gift_quantity": 1}, "idempotency_mismatch",
                  **_bearer(raw, HTTP_IDEMPOTENCY_KEY="once"))  # fmt: skip
    _same_refusal(apps, path, body, "invalid_idempotency_key", **_bearer(raw, HTTP_IDEMPOTENCY_KEY="k" * 300))
    # Sold out: the last unit goes, then both paths refuse alike.
    for buyer in (outsider, merchant):
        if buyer is outsider:
            fund(outsider)
        token, _ = access_token_issue(user=make_buyer(buyer.username + "_b", fund))
        assert _post(fast, path, body, **_bearer(token))[0] == "201 Created"
    late, _ = access_token_issue(user=make_buyer("late", fund))
    _same_refusal(apps, path, body, "sold_out", **_bearer(late))
    assert Order.objects.filter(deal=deal).count() == 3


def make_buyer(name: str, fund: Any) -> Any:
    from weituan.core.testing import make_user

    user = make_user(name)
    fund(user)
    return user


def test_revocation_deactivation_and_scope_changes_take_effect_on_the_next_request(
    apps, shopper, make_live_deal, fund
) -> None:
    _django, fast = apps
    deal = make_live_deal(max_quantity=10, per_user_limit=5)
    fund(shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    raw, token = access_token_issue(user=shopper)
    assert _post(fast, path, {"quantity": 1}, **_bearer(raw))[0] == "201 Created"
    assert access_token_revoke(raw=raw)
    status, _, body = _post(fast, path, {"quantity": 1}, **_bearer(raw))
    assert (status, json.loads(body)["code"]) == ("401 Unauthorized", "invalid_token")
    # Changed behind the ORM's back (no signal): still seen on the very next request.
    other, row = access_token_issue(user=shopper)
    assert _post(fast, path, {"quantity": 1}, **_bearer(other))[0] == "201 Created"
    AccessToken.objects.filter(pk=row.pk).update(scopes="read")
    status, _, body = _post(fast, path, {"quantity": 1}, **_bearer(other))
    assert (status, json.loads(body)["code"]) == ("403 Forbidden", "insufficient_scope")
    AccessToken.objects.filter(pk=row.pk).update(scopes="write")
    assert _post(fast, path, {"quantity": 1}, **_bearer(other))[0] == "201 Created"
    User.objects.filter(pk=shopper.pk).update(is_active=False)
    status, _, body = _post(fast, path, {"quantity": 1}, **_bearer(other))
    assert (status, json.loads(body)["code"]) == ("401 Unauthorized", "invalid_token")
    assert Order.objects.filter(deal=deal).count() == 3
    assert token.pk != row.pk


def test_requests_it_does_not_answer_go_to_django(
    apps, shopper, make_live_deal, fund, settings, monkeypatch
) -> None:
    django, fast = apps
    deal = make_live_deal()
    fund(shopper)
    raw, _ = access_token_issue(user=shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    _post(fast, path, {"quantity": 1})  # no token: the browser session's business
    _post(fast, path + "/", {"quantity": 1}, **_bearer(raw))
    _post(fast, path, "quantity=1", content_type="application/x-www-form-urlencoded", **_bearer(raw))
    _post(fast, path, {"quantity": 1}, **_bearer(raw, HTTP_HOST="evil.example"))
    assert django.calls == 4
    assert Order.objects.count() == 0
    settings.SECURE_SSL_REDIRECT = True
    monkeypatch.setattr(api_orders_fast, "_stack", None)  # the middleware read their settings when made
    django = CountingWSGI()
    status, headers, _ = _post(with_order_checkout_wsgi(django), path, {"quantity": 1}, **_bearer(raw))
    assert (status, dict(headers)["Location"], django.calls) == (
        "301 Moved Permanently",
        "https://testserver" + path,
        1,
    )
    assert Order.objects.count() == 0


def _asgi_post(path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }  # fmt: skip
    chunks = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def not_here(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("handed to Django")

    asyncio.run(with_order_checkout(not_here)(scope, receive, send))
    return sent


@pytest.mark.django_db(transaction=True)
def test_asgi_answers_as_wsgi(apps, shopper, make_live_deal, fund) -> None:
    deal = make_live_deal(max_quantity=10, per_user_limit=1)
    fund(shopper)
    raw, _ = access_token_issue(user=shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    body = json.dumps({"quantity": 1}).encode()
    auth = [(b"authorization", f"Bearer {raw}".encode()), (b"idempotency-key", b"a-1")]
    start, answer = _asgi_post(path, body, auth)
    assert start["status"] == 201
    # The same key through WSGI replays the very same answer and headers.
    status, headers, replay = _post(
        apps[1], path, {"quantity": 1}, **_bearer(raw, HTTP_IDEMPOTENCY_KEY="a-1")
    )
    assert (status, replay) == ("201 Created", answer["body"])
    assert [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers] == start["headers"]
    start, answer = _asgi_post(path, body, [auth[0]])
    assert (start["status"], json.loads(answer["body"])["code"]) == (409, "per_user_limit")


class CountingView:
    """The endpoint's ninja view, counting the requests the fast path handed to it."""

    def __init__(self, view: Any) -> None:
        self.view = view
        self.calls = 0

    def __call__(self, request: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.view(request, **kwargs)


@pytest.fixture
def view_calls(monkeypatch) -> CountingView:
    stack = api_orders_fast._Stack()
    assert stack.direct is not None, "the endpoint is no longer the operation the direct answer mirrors"
    counting = CountingView(stack.view)
    stack.view = counting  # type: ignore[method-assign]
    monkeypatch.setattr(api_orders_fast, "_stack", stack)
    return counting


def test_a_solo_order_and_its_refusals_are_answered_without_the_view(
    apps, view_calls, shopper, make_live_deal, fund
) -> None:
    deal = make_live_deal(max_quantity=10, per_user_limit=1)
    fund(shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    raw, _ = access_token_issue(user=shopper)
    assert _post(apps[1], path, {"quantity": 1, "team": None}, **_bearer(raw))[0] == "201 Created"
    _same_refusal(apps, path, {"quantity": 1}, "per_user_limit", **_bearer(raw))
    _same_refusal(apps, path, {"quantity": 1}, "invalid_token", **_bearer("not-a-token"))
    _same_refusal(
        apps, path, {"quantity": 1}, "not_found", **_bearer(raw, PATH_INFO="/api/v1/deals/0/orders")
    )
    assert view_calls.calls == 0
    # A body the schema refuses, or a team order, is the view's to answer (and answered as Django does).
    _same_refusal(apps, path, {"quantity": "many"}, "invalid", **_bearer(raw))
    _same_refusal(apps, path, [1], "invalid", **_bearer(raw))
    _same_refusal(apps, path, {"quantity": 1, "team": 12345}, "not_team_deal", **_bearer(raw))
    assert view_calls.calls == 3


def test_a_paid_order_and_a_shared_one_render_as_the_view(
    apps, view_calls, shopper, outsider, make_live_deal, fund
) -> None:
    from weituan.deals.services.deals import deal_tip_check

    django, fast = apps
    deal = make_live_deal(tipping_point=1, max_quantity=10, per_user_limit=5)
    fund(shopper)
    fund(outsider)
    path = f"/api/v1/deals/{deal.id}/orders"
    mine, _ = access_token_issue(user=shopper)
    theirs, _ = access_token_issue(user=outsider)
    assert _post(fast, path, {"quantity": 1}, **_bearer(mine))[0] == "201 Created"
    assert deal_tip_check(deal_id=deal.id) is True
    # Paid at once: a capture time and vouchers; then the same through the other path, replayed.
    paid = _post(fast, path, {"quantity": 2}, **_bearer(mine, HTTP_IDEMPOTENCY_KEY="paid"))
    body = json.loads(paid[2])
    assert (paid[0], body["state"], len(body["vouchers"])) == ("201 Created", "captured", 2)
    assert body["captured_at"] is not None and body["created_at"].endswith("Z")
    assert _post(django, path, {"quantity": 2}, **_bearer(mine, HTTP_IDEMPOTENCY_KEY="paid")) == paid
    viewed = _post(django, path, {"quantity": 1}, **_bearer(theirs, HTTP_IDEMPOTENCY_KEY="seen"))
    assert _post(fast, path, {"quantity": 1}, **_bearer(theirs, HTTP_IDEMPOTENCY_KEY="seen")) == viewed
    # An unknown share code credits nothing and answers `share: null`, as the view does.
    shared = _post(
        fast, path, {"quantity": 1, "share": "Nope1234"}, **_bearer(theirs, HTTP_IDEMPOTENCY_KEY="s")
    )
    assert json.loads(shared[2])["share"] is None
    assert (
        _post(django, path, {"quantity": 1, "share": "Nope1234"}, **_bearer(theirs, HTTP_IDEMPOTENCY_KEY="s"))
        == shared
    )
    assert view_calls.calls == 0


def test_the_token_and_the_deal_are_read_in_one_statement(
    apps, view_calls, shopper, make_live_deal, fund
) -> None:
    deal = make_live_deal(max_quantity=10, per_user_limit=5)
    fund(shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    raw, _ = access_token_issue(user=shopper)
    first = _post(apps[1], path, {"quantity": 1}, **_bearer(raw, HTTP_IDEMPOTENCY_KEY="one"))
    with CaptureQueriesContext(connection) as captured:
        replay = _post(apps[1], path, {"quantity": 1}, **_bearer(raw, HTTP_IDEMPOTENCY_KEY="one"))
        again = _post(apps[1], path, {"quantity": 1}, **_bearer(raw, HTTP_IDEMPOTENCY_KEY="two"))
    assert (first[0], replay, again[0]) == ("201 Created", first, "201 Created")
    statements = [query["sql"] for query in captured.captured_queries]
    token_reads = [sql for sql in statements if "accounts_accesstoken" in sql]
    deal_reads = [sql for sql in statements if '"deals_deal" d ' in sql]
    if connection.vendor == "postgresql":
        # Combined (`services.combined`): the deal's row, and the tokens with the deal's currency and
        # the replayed order, in one round trip for the batch; the retry answered from it.
        assert len(token_reads) == 2 and len(deal_reads) == 4
        assert all(sql in deal_reads for sql in token_reads)
        assert not any(sql.startswith('SELECT "deals_order"') for sql in statements)
    else:
        assert len(token_reads) == 2 and token_reads == deal_reads  # one statement each request
    assert view_calls.calls == 0
    assert Order.objects.filter(buyer=shopper, deal=deal).count() == 2


def test_purchases_and_refusals_after_the_prologue_is_kept_answer_as_the_view(
    apps, shopper, outsider, make_live_deal, fund
) -> None:
    """The middleware's headers of a 201 are kept per host and language after the first order; later
    purchases are completed from them, and a refusal still runs the middleware: each as the view."""
    django, fast = apps
    api_orders_fast._prologues.forget()
    deal = make_live_deal(max_quantity=20, per_user_limit=10)
    fund(shopper)
    fund(outsider)
    path = f"/api/v1/deals/{deal.id}/orders"
    body = {"quantity": 1}
    mine, _ = access_token_issue(user=shopper)
    theirs, _ = access_token_issue(user=outsider)
    for language in ("en", "zh-hans", "en"):
        headers = {"HTTP_ACCEPT_LANGUAGE": language}
        viewed = _post(django, path, body, **_bearer(theirs, **headers))
        for _ in range(2):  # the first makes the prologue (for its language), the second uses it
            answered = _post(fast, path, body, **_bearer(mine, **headers))
            assert answered[0] == viewed[0] == "201 Created"
            # The same headers; the body's length may differ by the ids' digits (an id drawn for an
            # order placed the per-order way after all is a gap in the sequence).
            assert _but_length(answered) == _but_length(viewed)
            assert dict(answered[1])["Content-Length"] == str(len(answered[2]))
        assert dict(answered[1])["Content-Language"] == ("zh-hans" if language == "zh-hans" else "en")
        _same_refusal(
            apps, path, {"quantity": 1, "unit_price": 1}, "price_mismatch", **_bearer(mine, **headers)
        )
    assert len(api_orders_fast._prologues._kept) == 2
    assert Order.objects.filter(deal=deal, buyer=shopper).count() == 6
