"""A solo wallet order on PostgreSQL, sent as one query: the same order, ledger, outbox
and refusals as the step-by-step path, and nothing left behind by a refusal."""

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from psycopg.pq import TransactionStatus

from weituan.core import rows as core_rows
from weituan.core.errors import ServiceError
from weituan.core.rows import StatementsLost, fetch_rows
from weituan.core.testing import make_user
from weituan.deals.models import Account, Deal, Entry, Order, OrderState, Posting, UserDealQuota
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services import orders
from weituan.deals.services.orders import order_place
from weituan.deals.services.rows import BatchRefused, StatementBatch
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.tracking.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def no_gate(settings: Any) -> Iterator[None]:
    """Without the Redis gate in front, so that the database's own refusals are the ones answered."""
    settings.REDIS_URL = ""
    yield


def _trace() -> tuple[int, int, int, int, int]:
    return (
        Order.objects.count(),
        Posting.objects.count(),
        Entry.objects.count(),
        OutboxEvent.objects.count(),
        UserDealQuota.objects.count(),
    )


def _refused(code: str, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        order_place(**kwargs)
    assert caught.value.code == code
    # The batch's transaction was rolled back and the connection is ready for the next request.
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert connection.get_autocommit()
    return caught.value


def test_an_order_commits_with_its_postings_event_quota_and_stock(merchant, no_gate) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=3)
    buyer = make_user("batch_buyer")
    wallet_top_up(user=buyer, amount=50_000)
    first = order_place(deal_id=deal.id, buyer=buyer, quantity=1, client_key="b-1")  # makes the held account
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=2, client_key="b-2")
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert order.id > first.id
    assert order.state == OrderState.AUTHORIZED
    stored = Order.objects.get(id=order.id)
    assert (stored.quantity, stored.amount, stored.state, stored.client_key) == (
        2,
        19_800,
        "authorized",
        "b-2",
    )
    assert stored.created_at == order.created_at
    posting = Posting.objects.get(order=order)
    assert (posting.kind, posting.key) == ("authorize", f"order:{order.id}:authorize")
    lines = sorted(Entry.objects.filter(posting=posting).values_list("account__kind", "amount"))
    assert lines == [("held", 19_800), ("wallet", -19_800)]
    event = OutboxEvent.objects.get(event="order_placed", payload__order_id=str(order.id))
    assert event.payload == {
        "quantity": 2, "team_id": None, "gateway": "wallet", "order_id": str(order.id),
        "revenue": 19_800, "currency": "CNY", "deal_id": deal.id,
    }  # fmt: skip
    assert (event.user_id, event.visitor_id) == (buyer.id, f"u:{buyer.id}")
    assert event.moved_at is not None  # the mover enqueued on commit ran after the order's commit
    assert UserDealQuota.objects.get(deal=deal, user=buyer).own == 3
    assert Deal.objects.get(id=deal.id).sold == 3
    wallet = wallet_of(user=buyer)
    assert (wallet.available, wallet.held) == (50_000 - 3 * 9_900, 3 * 9_900)
    assert ledger_report().ok
    # A retry with the key is the order it placed, and buys nothing.
    assert order_place(deal_id=deal.id, buyer=buyer, quantity=2, client_key="b-2").id == order.id
    assert Deal.objects.get(id=deal.id).sold == 3


def test_a_first_order_creates_the_held_account_and_is_placed_once(merchant, no_gate) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=3)
    buyer = make_user("batch_first")
    wallet_top_up(user=buyer, amount=50_000)
    assert not Account.objects.filter(owner=buyer, kind="held").exists()
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    assert Account.objects.filter(owner=buyer, kind="held").count() == 1
    assert list(Order.objects.filter(deal=deal).values_list("id", flat=True)) == [order.id]
    assert Posting.objects.filter(order=order).count() == 1
    assert OutboxEvent.objects.filter(event="order_placed").count() == 1
    assert Deal.objects.get(id=deal.id).sold == 1
    assert ledger_report().ok


def test_each_refusal_leaves_no_trace_and_the_next_order_goes_through(merchant, no_gate, monkeypatch) -> None:
    deal = live_deal(merchant, max_quantity=6, tipping_point=6, per_user_limit=2, deal_price=1_000)
    poor, rich, other = make_user("batch_poor"), make_user("batch_rich"), make_user("batch_other")
    wallet_top_up(user=poor, amount=1_500)
    wallet_top_up(user=rich, amount=50_000)
    wallet_top_up(user=other, amount=50_000)
    order_place(deal_id=deal.id, buyer=poor, quantity=1)
    order_place(deal_id=deal.id, buyer=rich, quantity=1)
    before = _trace()

    refusal = _refused("insufficient_balance", deal_id=deal.id, buyer=poor, quantity=1)
    assert refusal.details == {"balance": 500, "needed": 1_000, "currency": "CNY"}
    assert _trace() == before
    # The quota row moves only within the limit: one more unit is allowed, two are not.
    _refused("per_user_limit", deal_id=deal.id, buyer=rich, quantity=2)
    assert _trace() == before
    order_place(deal_id=deal.id, buyer=rich, quantity=1)
    order_place(deal_id=deal.id, buyer=other, quantity=2)
    late = make_user("batch_late")
    wallet_top_up(user=late, amount=50_000)
    order_place(deal_id=deal.id, buyer=late, quantity=1)
    assert Deal.objects.get(id=deal.id).sold == 6
    # The stock UPDATE is the last guard: an order whose read of the deal is stale (as when another
    # order took the last unit meanwhile) is refused by it, inside the batch.
    monkeypatch.setattr(orders, "order_request_check", lambda **_: None)
    after_sale = _trace()
    _refused("sold_out", deal_id=deal.id, buyer=late, quantity=1, client_key="late")
    assert _trace() == after_sale
    assert Deal.objects.get(id=deal.id).sold == 6
    assert ledger_report().ok


def _names_on_server() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def _our_names() -> set[str]:
    return set(core_rows._prepared[connection.connection].names)


def test_statements_a_rollback_took_away_are_prepared_again_and_the_order_is_placed(
    merchant, no_gate
) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    buyer = make_user("lost_buyer")
    wallet_top_up(user=buyer, amount=50_000)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)  # makes the held account
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)  # a batch: its statements are prepared here
    first = _our_names()
    assert len(first) == 6 and first <= _names_on_server()
    # A rollback while psycopg holds prepared statements of its own (fetch_rows' reads): psycopg
    # deallocates every prepared statement of the connection, these with its own.
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        fetch_rows("SELECT count(*) FROM deals_deal WHERE id = %s", [deal.id])
        1 / 0  # noqa: B018
    fetch_rows("SELECT count(*) FROM deals_deal WHERE id = %s", [deal.id])
    assert not first & _names_on_server()
    before = _trace()
    # The batch finds its statements gone, the order is run again once and they are prepared again.
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=1, client_key="after-rollback")
    assert order.state == OrderState.AUTHORIZED
    orders_, postings, entries, events, quotas = before
    assert _trace() == (
        orders_ + 1,
        postings + 1,
        entries + 2,
        events + 1,
        quotas,
    )  # the quota row is updated
    assert Deal.objects.get(id=deal.id).sold == 3
    # The statements are named by their text and their values' types (a key given here, none before).
    assert len(_our_names() & first) >= 5 and _our_names() <= _names_on_server()
    assert ledger_report().ok


def test_a_failed_prepared_batch_has_its_names_checked_before_the_next(no_gate) -> None:
    with transaction.atomic():
        batch = StatementBatch(prepared=True)
        batch.add("SELECT %s::int + 1", [1])
        batch.add("SELECT %s::int", [2])
        batch.send()
    names = _our_names()
    with pytest.raises(BatchRefused), transaction.atomic():
        refused = StatementBatch(prepared=True)
        refused.add("SELECT %s::int + 1", [1])
        refused.add("SELECT weituan_refuse(%s)", ["sold_out"])
        refused.send()
    assert core_rows._prepared[connection.connection].checked is False
    with transaction.atomic():
        batch = StatementBatch(prepared=True)
        answer = batch.add("SELECT %s::int + 1", [41])
        batch.add("SELECT %s::int", [0])
        batch.send()
        assert answer().rows == [(42,)]
    assert core_rows._prepared[connection.connection].checked is True
    # What the connection knows is what the server holds: the rollback may have taken every earlier
    # name with it (psycopg deallocates all when it holds statements of its own on the connection).
    held = _names_on_server()
    assert names & held <= _our_names() <= held


def test_statements_deallocated_elsewhere_are_prepared_again_and_the_order_placed(merchant, no_gate) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    buyer = make_user("dealloc_buyer")
    wallet_top_up(user=buyer, amount=50_000)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)
    first = _our_names()
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    # psycopg's reads are prepared again by psycopg; the order's batch, inside its transaction, finds
    # its statements gone: the transaction is rolled back and the order placed again, once.
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=1, client_key="after-deallocate")
    assert order.state == OrderState.AUTHORIZED
    assert Order.objects.filter(client_key="after-deallocate").count() == 1
    assert Deal.objects.get(id=deal.id).sold == 3
    assert len(_our_names() & first) >= 5 and _our_names() <= _names_on_server()
    assert ledger_report().ok


def test_a_prepared_batch_whose_statements_are_gone_raises_statements_lost_and_runs_nothing(no_gate) -> None:
    raw_sql = "SELECT %s::int + 1"
    with transaction.atomic():
        batch = StatementBatch(prepared=True)
        answer = batch.add(raw_sql, [1])
        batch.add(raw_sql, [2])
        batch.send()
        assert answer().rows == [(2,)]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(StatementsLost), transaction.atomic():
        lost = StatementBatch(prepared=True)
        lost.add(raw_sql, [1])
        lost.add(
            "INSERT INTO deals_userdealquota (deal_id, user_id, own, gifts) VALUES (%s, %s, 0, 0)", [1, 1]
        )
        lost.send()
    assert UserDealQuota.objects.count() == 0
    assert core_rows._prepared[connection.connection].checked is False  # asked of the server next time
    with transaction.atomic():
        batch = StatementBatch(prepared=True)
        answer = batch.add(raw_sql, [41])
        batch.add(raw_sql, [0])
        batch.send()
        assert answer().rows == [(42,)]


def test_a_batched_order_inside_an_outer_transaction_is_rolled_back_with_it(merchant, no_gate) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    buyer = make_user("outer_buyer")
    wallet_top_up(user=buyer, amount=50_000)
    order_place(deal_id=deal.id, buyer=buyer, quantity=1)  # makes the held account
    before = _trace()
    # The batch ends with its COMMIT only when the order's own transaction is the outermost one.
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        order_place(deal_id=deal.id, buyer=buyer, quantity=2, client_key="inside")
        1 / 0  # noqa: B018
    assert _trace() == before
    # Nor in a transaction begun with autocommit off: that one is its owner's to end.
    transaction.set_autocommit(False)
    try:
        order_place(deal_id=deal.id, buyer=buyer, quantity=2, client_key="inside")
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert _trace() == before
    assert Deal.objects.get(id=deal.id).sold == 1
    assert wallet_of(user=buyer).held == 9_900
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=2, client_key="inside")
    assert Order.objects.get(id=order.id).state == OrderState.AUTHORIZED
    assert Deal.objects.get(id=deal.id).sold == 3


def test_a_batch_sent_with_its_commit_is_committed_before_its_block_ends(merchant, no_gate) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    buyer = make_user("commit_buyer")
    other = psycopg.connect(**connection.get_connection_params() | {"autocommit": True})
    try:
        with transaction.atomic():
            batch = StatementBatch()
            batch.add(
                "INSERT INTO deals_userdealquota (deal_id, user_id, own, gifts) VALUES (%s, %s, 1, 0)",
                [deal.id, buyer.id],
            )
            batch.add("SELECT %s::int", [1])
            batch.send(commit=True)
            assert batch.committed
            # Another session sees the row while this block is still open: the batch committed it.
            seen = other.execute(
                "SELECT own FROM deals_userdealquota WHERE deal_id = %s AND user_id = %s", [deal.id, buyer.id]
            ).fetchall()
            assert seen == [(1,)]
    finally:
        other.close()
    assert connection.get_autocommit()


def test_values_bound_quickly_are_the_bytes_psycopg_binds(no_gate) -> None:
    from datetime import UTC, datetime, timedelta, timezone
    from decimal import Decimal

    from psycopg.types.numeric import Int2, Int4, Int8

    connection.ensure_connection()
    raw = connection.connection
    values: list[Any] = [
        0, 7, -7, 2**63 - 1, -(2**63), 2**70, Int2(3), Int4(-5), Int8(2**40), True, False, None,
        "", "plain", "a'b", "back\\slash", "中文 ok", "tab\tnew\nline", 1.5, Decimal("-2.50"),
        datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 3, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 1, 2), [None, None], [True], [1.5],
    ]  # fmt: skip
    query = "SELECT " + ", ".join(["%s"] * len(values)) + " WHERE 100 %% 7 = 2"
    assert core_rows.sql_bound_quick(raw, query, values) == core_rows.sql_bound(raw, query, values)
    assert core_rows._plain_literals[raw] is True  # the quick writing was used, not handed back
    # And the server reads them back as they were sent.
    with raw.cursor() as cursor:
        cursor.execute(core_rows.sql_bound_quick(raw, "SELECT %s, %s, %s, %s", [-7, Int4(-5), "a'b", None]))
        assert cursor.fetchone() == (-7, -5, "a'b", None)


def test_arrays_bound_quickly_read_back_as_psycopg_binds_them(no_gate) -> None:
    """Arrays of integers and of texts are written here (as int8[] and text[]); the server reads them
    back as the same values psycopg's own literal gives, whatever their items hold."""
    connection.ensure_connection()
    raw = connection.connection
    arrays: list[Any] = [
        [1, 2], [0, -7, 2**63 - 1, -(2**63)], [None, 3, None], ["a", None], ["", "plain", "a'b", 'q"uote',
        "{braces,commas}", "NULL", "中文 ok", "tab\tnew\nline", " spaced "], ["back\\slash"],
    ]  # fmt: skip
    # psycopg's literal of a text array has no type of its own: the statement gives it one.
    typed = "SELECT %s::int8[], %s::int8[], %s::int8[], %s::text[], %s::text[], %s::text[]"
    quick = core_rows.sql_bound_quick(raw, typed, arrays)
    assert b"'{1,2}'::int8[]" in quick and b"""'{"a",NULL}'::text[]""" in quick  # written here
    with raw.cursor() as cursor:
        cursor.execute(quick)
        read_quick = cursor.fetchone()
        cursor.execute(core_rows.sql_bound(raw, typed, arrays))
        assert read_quick == cursor.fetchone() == tuple(arrays)


def test_an_outermost_batch_with_its_commit_is_one_round_trip(merchant, no_gate, tmp_path) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    first, buyer = make_user("trip_first"), make_user("trip_buyer")
    statement = "INSERT INTO deals_userdealquota (deal_id, user_id, own, gifts) VALUES (%s, %s, %s, 0)"
    with transaction.atomic():  # the statements are prepared on this connection first
        warm = StatementBatch(prepared=True)
        warm.add(statement, [deal.id, first.id, 1])
        warm.add("SELECT %s::int", [1])
        warm.send()
    trace = tmp_path / "wire.txt"
    with trace.open("w") as wire:
        pgconn = connection.connection.pgconn
        pgconn.trace(wire.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
        try:
            with transaction.atomic():
                batch = StatementBatch(prepared=True)
                batch.add(statement, [deal.id, buyer.id, 2])
                answer = batch.add("SELECT %s::int", [42])
                batch.send(commit=True)
        finally:
            pgconn.untrace()
    sent = [line for line in trace.read_text().splitlines() if line.startswith("F")]
    # One query: BEGIN, the statements and COMMIT together; psycopg sent no BEGIN of its own.
    assert len(sent) == 1 and '"BEGIN; EXECUTE ' in sent[0] and sent[0].endswith('; COMMIT"')
    assert batch.committed and answer().rows == [(42,)]
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert connection.connection.autocommit and connection.get_autocommit()
    assert UserDealQuota.objects.get(deal=deal, user=buyer).own == 2


def test_a_refused_batch_that_began_its_transaction_leaves_nothing_and_the_connection_ready(
    merchant, no_gate
) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5)
    buyer = make_user("begun_buyer")
    statement = "INSERT INTO deals_userdealquota (deal_id, user_id, own, gifts) VALUES (%s, %s, %s, 0)"
    with pytest.raises(BatchRefused), transaction.atomic():
        batch = StatementBatch(prepared=True)
        batch.add(statement, [deal.id, buyer.id, 1])
        batch.add("SELECT weituan_refuse(%s)", ["sold_out"])
        batch.send(commit=True)
    assert not batch.committed
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert connection.get_autocommit() and connection.connection.autocommit
    assert not UserDealQuota.objects.filter(deal=deal).exists()
    with transaction.atomic():
        again = StatementBatch(prepared=True)
        again.add(statement, [deal.id, buyer.id, 3])
        again.add("SELECT %s::int", [1])
        again.send(commit=True)
    assert UserDealQuota.objects.get(deal=deal, user=buyer).own == 3
