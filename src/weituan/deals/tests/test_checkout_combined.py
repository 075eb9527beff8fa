"""Combined checkout on PostgreSQL (`services.combined`): the solo wallet orders of one deal that arrive
together are written in one transaction, and each is answered as if it had been placed alone; what the
batch does not decide goes the per-order way, with nothing written for it."""

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, connections
from django.db.models import Count
from django.test import RequestFactory
from redis.exceptions import ResponseError

from weituan.accounts.scopes import scopes_allow
from weituan.accounts.tokens import access_token_issue, access_token_viewer_params
from weituan.core.redis import get_redis, redis_enabled, rkey
from weituan.core.testing import CountingWSGI, make_user
from weituan.deals.api_orders_fast import placed_body, with_order_checkout, with_order_checkout_wsgi
from weituan.deals.models import Deal, DealState, Order, OrderState, Posting, UserDealQuota
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.schemas import order_body
from weituan.deals.services import combined
from weituan.deals.services.combined import Ask, order_place_combined
from weituan.deals.services.orders import order_place
from weituan.deals.services.rows import StatementBatch
from weituan.deals.services.stock import stock_gate_take_many
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.tracking.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PRICE = 9900  # the deals tests' hot-pot deal


def _buyers(count: int, deal: Deal, *, prefix: str = "combo", balance: int = 10 * PRICE) -> list[Any]:
    """Buyers with money, each with a first order of `deal` placed alone (it creates their held account)."""
    buyers = []
    for index in range(count):
        buyer = make_user(f"{prefix}{index}")
        wallet_top_up(user=buyer, amount=balance)
        order_place(deal_id=deal.id, buyer=buyer, quantity=1)
        buyers.append(buyer)
    return buyers


def _ask(buyer: Any, deal: Deal, *, quantity: int = 1, key: str | None = None, **more: Any) -> Ask:
    raw, _ = access_token_issue(user=buyer)
    params = access_token_viewer_params(raw)
    assert params is not None
    return Ask(
        token_hash=str(params[0]), deal_id=deal.id, quantity=quantity, gift_quantity=more.pop("gifts", 0),
        unit_price=more.pop("unit_price", None), client_key=key,
        allowed=more.pop("allowed", lambda granted: scopes_allow(granted, ("write",))),
    )  # fmt: skip


def _shown(order: Order) -> dict[str, Any]:
    """The order's body as the API's 201 shows it (its times as the API's JSON encoder writes them)."""
    body = order_body(order)
    for name in ("created_at", "captured_at"):
        if body[name] is not None:
            body[name] = DjangoJSONEncoder().default(datetime.fromisoformat(body[name]))
    return body


def _gate_sold(deal: Deal) -> int | None:
    if not redis_enabled():
        return None
    found = get_redis().hget(rkey("deal", deal.id, "stock"), "sold")
    return int(found) if found is not None else None


def _post(app: Any, path: str, raw: str, key: str) -> tuple[str, dict[str, Any]]:
    environ = (
        RequestFactory()
        .post(
            path,
            data=json.dumps({"quantity": 1, "unit_price": PRICE}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        .environ
    )
    started: list[Any] = []
    body = b"".join(app(environ, lambda status, headers: started.append(status)))
    return started[0], json.loads(body)


def test_concurrent_orders_share_one_transaction_and_answer_as_each_alone(merchant, monkeypatch) -> None:
    """Forty buyers order at once over HTTP. The first batch is held until every other order is
    waiting: they are then placed as one batch, each answered with its own order as the API shows it."""
    count = 40
    deal = live_deal(merchant, max_quantity=200, tipping_point=150, per_user_limit=5)
    buyers = _buyers(count, deal)
    tokens = [access_token_issue(user=buyer)[0] for buyer in buyers]
    path = f"/api/v1/deals/{deal.id}/orders"
    django = CountingWSGI()
    app = with_order_checkout_wsgi(django)
    read = combined._read
    first: list[int] = []

    def held_read(batch: list[Ask]) -> Any:
        if not first:
            # The first batch (its leader, and any ask that arrived before it took them) waits until
            # every other ask is waiting for the next.
            first.append(len(batch))
            give_up = time.monotonic() + 60
            while time.monotonic() < give_up:
                with combined._lock:
                    line = combined._lines.get(deal.id)
                    if line is not None and len(line.waiting) == count - len(batch):
                        break
                time.sleep(0.01)
        return read(batch)

    monkeypatch.setattr(combined, "_read", held_read)
    barrier = threading.Barrier(count)

    def buy(index: int) -> tuple[str, dict[str, Any]]:
        try:
            barrier.wait()
            return _post(app, path, tokens[index], f"rush-{index}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(buy, range(count)))
    assert django.calls == 0
    assert {status for status, _ in answers} == {"201 Created"}
    placed = Order.objects.filter(deal=deal, client_key__startswith="rush-")
    assert placed.count() == count
    # The first batch, then every other order together: an order's time is its batch's.
    sizes = sorted(placed.order_by().values("created_at").annotate(n=Count("id")).values_list("n", flat=True))
    assert sizes == sorted(size for size in (first[0], count - first[0]) if size)
    for (_, body), buyer, index in zip(answers, buyers, range(count), strict=True):
        order = Order.objects.get(buyer=buyer, client_key=f"rush-{index}")
        assert body == _shown(order)
        assert order.state == OrderState.AUTHORIZED and order.amount == PRICE
        assert Posting.objects.filter(order=order, kind="authorize").count() == 1
        assert OutboxEvent.objects.filter(event="order_placed", payload__order_id=str(order.id)).count() == 1
    deal.refresh_from_db()
    assert (deal.sold, deal.takers, deal.state) == (2 * count, count, DealState.LIVE)
    assert list(UserDealQuota.objects.filter(deal=deal).values_list("own", flat=True).distinct()) == [2]
    for buyer in buyers:
        wallet = wallet_of(user=buyer)
        assert (wallet.available, wallet.held) == (8 * PRICE, 2 * PRICE)
    assert ledger_report().ok
    if redis_enabled():
        assert _gate_sold(deal) == 2 * count


def test_a_batch_a_wallet_cannot_pay_for_is_rolled_back_and_left_to_each_order(merchant) -> None:
    deal = live_deal(merchant, max_quantity=50, tipping_point=40, per_user_limit=5)
    rich, poor = _buyers(2, deal, balance=2 * PRICE)
    order_place(deal_id=deal.id, buyer=poor, quantity=1)  # nothing left in the poor buyer's wallet
    gate_before = _gate_sold(deal)
    asks = [_ask(rich, deal, key="r-1"), _ask(poor, deal, key="p-1")]
    combined._batch_place(asks)
    assert [ask.placed for ask in asks] == [None, None]
    assert [ask.error for ask in asks] == [None, None]
    assert not Order.objects.filter(client_key__in=["r-1", "p-1"]).exists()
    deal.refresh_from_db()
    assert deal.sold == 3
    assert _gate_sold(deal) == gate_before  # the batch's units given back in the gate
    # Each goes the per-order way: the rich buyer's order is placed, the poor one's refused.
    for ask in asks:
        order_place_combined(ask)
    assert asks[0].placed is not None and asks[1].placed is None
    deal.refresh_from_db()
    assert deal.sold == 4
    assert ledger_report().ok


def test_what_the_batch_does_not_decide_goes_the_per_order_way(merchant, outsider) -> None:
    deal = live_deal(merchant, max_quantity=50, tipping_point=40, per_user_limit=2)
    one, two, three = _buyers(3, deal, prefix="mixed")
    newcomer = make_user("newcomer")
    wallet_top_up(user=newcomer, amount=10 * PRICE)
    kept = order_place(deal_id=deal.id, buyer=three, quantity=1, client_key="kept")
    asks = [
        _ask(one, deal, key="a"),  # placed
        _ask(one, deal, key="b"),  # the same buyer again in one batch
        _ask(two, deal, quantity=2),  # past the per-user limit (holds 1 of 2)
        _ask(two, deal, unit_price=PRICE - 1),  # a price the deal does not have
        _ask(three, deal, key="kept"),  # a retry: answered with the order it placed
        _ask(newcomer, deal),  # a first order: the per-order way creates the held account
        _ask(merchant, deal),  # the merchant's own deal
        _ask(outsider, deal, allowed=lambda granted: False),  # a token without the scope
    ]
    combined._batch_place(asks)
    placed = [ask.placed for ask in asks]
    assert placed[0] is not None and all(answer is None for answer in placed[1:4] + placed[5:])
    assert placed[4] is not None and placed[4].id == kept.id
    assert placed_body(placed[4]) == order_body(
        Order.objects.get(id=kept.id)
    )  # as the per-order way shows it
    assert Order.objects.filter(buyer=one, client_key="a").count() == 1
    assert Order.objects.filter(buyer=three).count() == 2  # the retry wrote nothing
    deal.refresh_from_db()
    assert deal.sold == 5  # 3 first orders, the kept one, and one of this batch


def test_units_past_the_stock_or_a_tipped_deal_are_left_to_the_per_order_way(merchant) -> None:
    deal = live_deal(merchant, max_quantity=4, tipping_point=3, per_user_limit=2)
    first, second = _buyers(2, deal, prefix="last")
    asks = [_ask(first, deal), _ask(second, deal, quantity=2)]  # 2 units left: the second asks past them
    combined._batch_place(asks)
    assert asks[0].placed is not None and asks[1].placed is None
    deal.refresh_from_db()
    assert (deal.sold, deal.state) == (3, DealState.LIVE)
    third = make_user("last-third")
    wallet_top_up(user=third, amount=10 * PRICE)
    order_place(deal_id=deal.id, buyer=third, quantity=1)  # the third taker: the deal tips, sold out
    deal.refresh_from_db()
    assert deal.state == DealState.SOLD_OUT
    more = _ask(second, deal)
    combined._batch_place([more])
    assert more.placed is None  # the per-order way answers it (sold out; a tipped deal pays at once)


def test_a_batch_bringing_the_tipping_point_has_the_deal_tipped(merchant) -> None:
    accounts_made = live_deal(merchant, max_quantity=50, tipping_point=50, per_user_limit=2)
    buyers = _buyers(3, accounts_made, prefix="tip")
    deal = live_deal(merchant, max_quantity=50, tipping_point=3, per_user_limit=2)
    asks = [_ask(buyer, deal) for buyer in buyers]
    combined._batch_place(asks)
    assert [ask.error for ask in asks] == [None] * 3
    assert all(ask.placed is not None and not ask.placed.settled for ask in asks)
    deal.refresh_from_db()
    assert (deal.takers, deal.state) == (3, DealState.TIPPED)  # the tip check ran after the batch
    assert Order.objects.filter(deal=deal, state=OrderState.CAPTURED).count() == 3
    assert ledger_report().ok


def test_a_deal_tipped_while_its_batch_was_read_pays_the_batch_at_once(merchant, monkeypatch) -> None:
    accounts_made = live_deal(merchant, max_quantity=50, tipping_point=50, per_user_limit=2)
    late, early = _buyers(2, accounts_made, prefix="race")
    deal = live_deal(merchant, max_quantity=50, tipping_point=1, per_user_limit=2)
    read = combined._read

    def read_then_tip(batch: list[Ask]) -> Any:
        found = read(batch)
        order_place(deal_id=deal.id, buyer=early, quantity=1)  # the tipping point: the deal tips
        return found

    monkeypatch.setattr(combined, "_read", read_then_tip)
    raw, _ = access_token_issue(user=late)
    status, body = _post(
        with_order_checkout_wsgi(CountingWSGI()), f"/api/v1/deals/{deal.id}/orders", raw, "l"
    )
    assert status == "201 Created"
    order = Order.objects.get(id=body["id"])
    assert order.state == OrderState.CAPTURED and len(body["vouchers"]) == 1
    assert body == _shown(order)
    assert ledger_report().ok


def test_switched_off_every_order_is_placed_alone(merchant, settings) -> None:
    settings.DEALS_CHECKOUT_COMBINE = False
    deal = live_deal(merchant, max_quantity=10, tipping_point=10, per_user_limit=5)
    (buyer,) = _buyers(1, deal, prefix="alone")
    raw, _ = access_token_issue(user=buyer)
    app = with_order_checkout_wsgi(CountingWSGI())
    status, body = _post(app, f"/api/v1/deals/{deal.id}/orders", raw, "alone-1")
    assert status == "201 Created"
    order = Order.objects.get(id=body["id"])
    assert body == _shown(order)
    # Placed alone: its time is not shared with any other order of the deal.
    assert Order.objects.filter(deal=deal, created_at=order.created_at).count() == 1
    assert combined._lines == {}


def _asgi_scope(path: str, body: bytes, raw: str, key: str | None) -> dict[str, Any]:
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), (b"authorization", f"Bearer {raw}".encode())]  # fmt: skip
    if key is not None:
        headers.append((b"idempotency-key", key.encode()))
    return {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": headers, "server": ("testserver", 80), "client": ("127.0.0.1", 1),
    }  # fmt: skip


async def _asgi(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], Any]:
    chunks = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], sent[0]["headers"], json.loads(sent[1]["body"])


async def _not_django(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("handed to Django")


def test_orders_on_the_event_loop_share_batches_and_answer_as_on_the_threads(merchant, outsider) -> None:
    """Under ASGI the orders of a deal are combined on the server's event loop: twenty requests at once
    make a batch of one (the first, which starts it) and one of nineteen; each 201 is made on the loop
    with the headers the threads give it. What the batch does not place is answered on the threads."""
    count = 20
    deal = live_deal(merchant, max_quantity=200, tipping_point=150, per_user_limit=3)
    buyers = _buyers(count, deal, prefix="loop")
    tokens = [access_token_issue(user=buyer)[0] for buyer in buyers]
    newcomer = make_user("loop-new")
    wallet_top_up(user=newcomer, amount=10 * PRICE)
    stranger = access_token_issue(user=newcomer)[0]
    app = with_order_checkout(_not_django)
    path = f"/api/v1/deals/{deal.id}/orders"
    body = json.dumps({"quantity": 1, "unit_price": PRICE}).encode()
    wrong = json.dumps({"quantity": 1, "unit_price": 1}).encode()

    async def rush() -> tuple[Any, list[Any], list[Any]]:
        # The first is answered on the threads: it keeps the prologue the loop answers with.
        first = await _asgi(app, _asgi_scope(path, body, tokens[0], "first"), body)
        together = [_asgi(app, _asgi_scope(path, body, tokens[i], f"loop-{i}"), body) for i in range(count)]
        placed = await asyncio.gather(*together)
        mixed = [
            _asgi(app, _asgi_scope(path, body, tokens[1], "loop-1"), body),  # a retry: the same answer
            _asgi(app, _asgi_scope(path, body, stranger, "new"), body),  # a first order: the threads
            _asgi(app, _asgi_scope(path, wrong, tokens[2], None), wrong),  # a price the deal has not
        ]
        return first, placed, await asyncio.gather(*mixed)

    first, placed, (retry, newcomers, mismatch) = asyncio.run(rush())
    assert first[0] == 201
    orders = Order.objects.filter(deal=deal, client_key__startswith="loop-")
    assert orders.count() == count
    sizes = sorted(orders.order_by().values("created_at").annotate(n=Count("id")).values_list("n", flat=True))
    assert sizes == [1, count - 1]
    for index, (status, headers, answer) in enumerate(placed):
        order = Order.objects.get(buyer=buyers[index], client_key=f"loop-{index}")
        assert (status, answer) == (201, _shown(order))
        assert [pair for pair in headers if pair[0] != b"Content-Length"] == [
            pair for pair in first[1] if pair[0] != b"Content-Length"
        ]
    assert retry == placed[1]
    assert newcomers[0] == 201 and Order.objects.filter(buyer=newcomer, client_key="new").exists()
    assert (mismatch[0], mismatch[2]["code"]) == (422, "price_mismatch")
    deal.refresh_from_db()
    assert (deal.sold, deal.takers) == (2 * count + 2, count + 1)
    assert ledger_report().ok


def test_a_connection_lost_with_the_batch_sent_answers_an_error_and_never_places_again(
    merchant, monkeypatch
) -> None:
    """The batch committed, but its connection failed before the answer came back: whether it
    committed is unknown there, so each order is answered the error. None is placed a second time the
    per-order way, and the gate keeps their units."""
    deal = live_deal(merchant, max_quantity=50, tipping_point=40, per_user_limit=5)
    buyers = _buyers(3, deal, prefix="lost")
    gate_before = _gate_sold(deal)
    send = StatementBatch.send

    def send_then_lose(self: StatementBatch, *, commit: bool = False) -> None:
        send(self, commit=commit)
        if any(sql.startswith('INSERT INTO "deals_order"') for sql, _ in self._queued):  # the write's
            raise OperationalError("server closed the connection unexpectedly") from OSError("reset")

    monkeypatch.setattr(StatementBatch, "send", send_then_lose)
    asks = [_ask(buyer, deal, key=f"lost-{index}") for index, buyer in enumerate(buyers)]
    combined._batch_place(asks)
    assert all(ask.placed is None and isinstance(ask.error, OperationalError) for ask in asks)
    monkeypatch.setattr(StatementBatch, "send", send)
    for buyer, ask in zip(buyers, asks, strict=True):  # a retry under the same key finds each order
        retry = _ask(buyer, deal, key=ask.client_key)
        combined._batch_place([retry])
        assert retry.placed is not None
    assert Order.objects.filter(deal=deal, client_key__startswith="lost-").count() == 3
    if redis_enabled():
        assert _gate_sold(deal) == (gate_before or 0) + 3
    assert ledger_report().ok


@pytest.mark.redis
def test_a_gate_take_failing_part_of_the_way_gives_back_what_it_took(merchant) -> None:
    deal = live_deal(merchant, max_quantity=50, tipping_point=40, per_user_limit=5)
    (buyer,) = _buyers(1, deal, prefix="gate")
    before = _gate_sold(deal)
    # The second take's own units are not a number: its script fails, after the first took its unit.
    with pytest.raises(ResponseError):
        stock_gate_take_many(deal=deal, takes=[(buyer.id, 1, 0), (buyer.id + 1, "x", 0)])  # type: ignore[list-item]
    assert _gate_sold(deal) == before


def test_two_bearer_tokens_on_the_event_loop_are_left_to_django(merchant) -> None:
    deal = live_deal(merchant, max_quantity=50, tipping_point=40, per_user_limit=5)
    first, second = _buyers(2, deal, prefix="two")
    raws = [access_token_issue(user=buyer)[0] for buyer in (first, second)]
    handed: list[Any] = []

    async def django(scope: Any, receive: Any, send: Any) -> None:
        handed.append(scope)
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b'{"code": "not_authenticated"}'})

    app = with_order_checkout(django)
    path = f"/api/v1/deals/{deal.id}/orders"
    body = json.dumps({"quantity": 1}).encode()

    async def both() -> Any:
        await _asgi(app, _asgi_scope(path, body, raws[0], "warm"), body)  # keeps the prologue
        scope = _asgi_scope(path, body, raws[0], "two")
        scope["headers"].append((b"authorization", f"Bearer {raws[1]}".encode()))
        return await _asgi(app, scope, body)

    status, _, answer = asyncio.run(both())
    # Answered on the threads, as the view answers a header Django joins into no token.
    assert (status, answer["code"]) == (401, "invalid_token") and handed == []
    assert not Order.objects.filter(client_key="two").exists()
