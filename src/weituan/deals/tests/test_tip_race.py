"""A buyer cancelling while the tip check decides: the deal tips only with its tipping point of buyers
counted at the moment it tips, and every one of them is paid (a cancel after that is refused)."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.db.models import Sum

from weituan.core.errors import ServiceError
from weituan.core.testing import make_user
from weituan.deals.models import Deal, DealState, Order, OrderState, Team, TeamState
from weituan.deals.queries import deal_buyers_counted, ledger_report
from weituan.deals.services import deals as deal_services
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal

# The threads below use connections of their own, which see only what is committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _tip_checks_only_when_called(settings: Any) -> None:
    # Placing an order enqueues the tip check after its commit; here the tests run it themselves.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def buyers_holding(deal: Any, n: int, prefix: str) -> list[Order]:
    """An order of one unit, its payment held, for each of `n` new buyers."""
    placed = []
    for i in range(n):
        buyer = make_user(f"{prefix}{i}")
        wallet_top_up(user=buyer, amount=50_000)
        placed.append(order_place(deal_id=deal.id, buyer=buyer, quantity=1))
    return placed


def state_of(order: Order) -> str:
    return str(Order.objects.filter(id=order.id).values_list("state", flat=True).get())


class Elsewhere:
    """A call run on another thread, with its own database connection, as another request would."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.call = call
        self.outcome: str | None = None  # "done", or the code of the refusal
        self.pid: int | None = None  # PostgreSQL: the connection's server process
        self._connected = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self.pid = cursor.fetchone()[0]
            self._connected.set()
            self.call()
            self.outcome = "done"
        except ServiceError as exc:
            self.outcome = exc.code
        except Exception as exc:  # what the test reports, if it happens
            self.outcome = f"{type(exc).__name__}: {exc}"
        finally:
            self._connected.set()
            connections.close_all()

    def start_and_wait(self) -> None:
        """Start it, and return once it is done or waits for a lock this thread's transaction holds
        (PostgreSQL: seen in pg_locks; SQLite: still running a second later, its writer waiting)."""
        self.thread.start()
        self._connected.wait(10)
        deadline = time.monotonic() + (30 if connection.vendor == "postgresql" else 1)
        while self.thread.is_alive() and time.monotonic() < deadline:
            if self.pid is not None and self._waits_for_a_lock():
                return
            self.thread.join(0.01)

    def _waits_for_a_lock(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", [self.pid])
            return bool(cursor.fetchone()[0])

    def finish(self) -> str | None:
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.outcome


@contextmanager
def before_the_first(name: str, run: Callable[..., None], *, when: Callable[..., bool]) -> Iterator[None]:
    """Run `run(*args, **kwargs)` before the first call of the deals services' `name` for which
    `when(*args, **kwargs)` holds (then the call itself)."""
    real = getattr(deal_services, name)
    ran = threading.Event()

    def hooked(*args: Any, **kwargs: Any) -> Any:
        if not ran.is_set() and when(*args, **kwargs):
            ran.set()
            run(*args, **kwargs)
        return real(*args, **kwargs)

    with mock.patch.object(deal_services, name, hooked):
        yield
    assert ran.is_set()


def test_a_cancel_committed_after_the_count_keeps_the_deal_from_tipping_short(merchant):
    deal = live_deal(merchant, tipping_point=3)
    a, b, c = buyers_holding(deal, 3, "short")
    cancel = Elsewhere(lambda: order_cancel(order_id=c.id, by=c.buyer))
    # The check has counted three buyers when c's cancel commits, on another connection.
    counted: list[int] = []

    def count_then_cancel(*, deal_id: int) -> int:
        counted.append(deal_buyers_counted(deal_id=deal_id))
        cancel.start_and_wait()
        return counted[-1]

    real_count = deal_services.deal_buyers_counted
    calls = iter([count_then_cancel])
    with mock.patch.object(
        deal_services, "deal_buyers_counted", lambda *, deal_id: next(calls, real_count)(deal_id=deal_id)
    ):
        assert deal_tip_check(deal_id=deal.id) is False
    assert counted == [3]
    assert cancel.finish() == "done"
    deal.refresh_from_db()
    assert (deal.state, deal.tipped_at, deal.sold, deal.takers) == (DealState.LIVE, None, 2, 2)
    assert deal_buyers_counted(deal_id=deal.id) == 2
    assert [state_of(order) for order in (a, b, c)] == [
        OrderState.AUTHORIZED,
        OrderState.AUTHORIZED,
        OrderState.VOIDED,
    ]
    assert ledger_report().ok


def test_a_cancel_between_the_count_and_the_tip_waits_and_is_refused(merchant):
    deal = live_deal(merchant, tipping_point=3)
    a, b, c = buyers_holding(deal, 3, "between")
    cancel = Elsewhere(lambda: order_cancel(order_id=c.id, by=c.buyer))
    # The buyers are counted; just before the deal is moved to tipped, c cancels on another connection.
    with before_the_first(
        "advance",
        lambda *args, **kwargs: cancel.start_and_wait(),
        when=lambda graph, rows, to, **_: to == "tipped",
    ):
        assert deal_tip_check(deal_id=deal.id) is True
    outcome = cancel.finish()
    if connection.vendor == "sqlite" and outcome is not None and "locked" in outcome:
        # SQLite's in-memory test database refuses the second writer at once instead of queueing it:
        # the cancel comes again, after the tip.
        with pytest.raises(ServiceError) as refused:
            order_cancel(order_id=c.id, by=c.buyer)
        outcome = refused.value.code
    assert outcome == "not_cancellable"
    deal.refresh_from_db()
    assert (deal.state, deal.sold, deal.takers) == (DealState.TIPPED, 3, 3)
    assert [state_of(order) for order in (a, b, c)] == [OrderState.CAPTURED] * 3
    assert deal_buyers_counted(deal_id=deal.id) == 3
    assert ledger_report().ok


def test_a_cancel_after_the_tip_is_refused_and_changes_nothing(merchant):
    deal = live_deal(merchant, tipping_point=3, team_price=5_000, team_size=2)
    a, b, c = buyers_holding(deal, 3, "after")
    # A team still waiting for its second member: not counted, and not paid if the deal tips.
    leader = make_user("afterlead")
    wallet_top_up(user=leader, amount=50_000)
    in_team = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start")
    refusals: list[str] = []

    def cancel_c(*, deal_id: int) -> None:
        # The deal has tipped and c's payment is not captured yet.
        assert Deal.objects.get(id=deal_id).state == DealState.TIPPED
        assert state_of(c) == OrderState.AUTHORIZED
        try:
            order_cancel(order_id=c.id, by=c.buyer)
        except ServiceError as exc:
            refusals.append(exc.code)
        assert state_of(c) == OrderState.AUTHORIZED

    with before_the_first("deal_settle", cancel_c, when=lambda **_: True):
        assert deal_tip_check(deal_id=deal.id) is True
    assert refusals == ["not_cancellable"]
    deal.refresh_from_db()
    assert (deal.state, deal.sold, deal.takers) == (DealState.TIPPED, 4, 4)
    assert [state_of(order) for order in (a, b, c)] == [OrderState.CAPTURED] * 3
    # A member of a team that has not filled may still leave it after the tip: nothing is owed yet.
    order_cancel(order_id=in_team.id, by=leader)
    assert state_of(in_team) == OrderState.VOIDED
    # Its only member gone, the team closes as one that did not fill.
    team = Team.objects.filter(orders=in_team).get()
    assert (team.state, team.members) == (TeamState.EXPIRED, 0)
    deal.refresh_from_db()
    assert (deal.sold, deal.takers) == (3, 3)
    # A paid order is refunded under the deal's policy, never cancelled.
    with pytest.raises(ServiceError) as refused:
        order_cancel(order_id=a.id, by=a.buyer)
    assert refused.value.code == "not_cancellable"
    assert state_of(a) == OrderState.CAPTURED
    assert ledger_report().ok


def test_a_team_that_fills_after_the_tip_is_owed_its_capture(merchant):
    deal = live_deal(merchant, tipping_point=1, team_price=5_000, team_size=2)
    (solo,) = buyers_holding(deal, 1, "filled")
    assert deal_tip_check(deal_id=deal.id) is True
    leader, member = make_user("filledlead"), make_user("filledmate")
    for person in (leader, member):
        wallet_top_up(user=person, amount=50_000)
    led = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start")
    joined = order_place(deal_id=deal.id, buyer=member, quantity=1, team=led.team_id)
    # The member who filled the team is paid at once; the leader's hold waits for the check the filling
    # enqueued, and is the deal's now: the leader can no longer withdraw it.
    assert Team.objects.filter(orders=led).get().state == TeamState.FILLED
    assert (state_of(led), state_of(joined)) == (OrderState.AUTHORIZED, OrderState.CAPTURED)
    with pytest.raises(ServiceError) as refused:
        order_cancel(order_id=led.id, by=leader)
    assert refused.value.code == "not_cancellable"
    deal.refresh_from_db()
    assert (state_of(led), deal.sold, deal.takers) == (OrderState.AUTHORIZED, 3, 3)
    deal_tip_check(deal_id=deal.id)
    assert [state_of(order) for order in (solo, led, joined)] == [OrderState.CAPTURED] * 3
    assert ledger_report().ok


def cancels_racing_tip_checks(deal_id: int, leaving: list[Order], checkers: int) -> list[str]:
    """The buyers of `leaving` cancel, each on a thread, while `checkers` threads run the tip check
    until the deal is no longer live or the cancels are done; returns the cancels' outcomes."""
    barrier = threading.Barrier(len(leaving) + checkers)
    cancels_done = threading.Event()
    outcomes: list[str] = []

    def cancel(order: Order) -> None:
        try:
            barrier.wait()
            order_cancel(order_id=order.id, by=order.buyer)
            outcomes.append("cancelled")
        except ServiceError as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    def tip_checks() -> None:
        try:
            barrier.wait()
            while Deal.objects.filter(id=deal_id, state=DealState.LIVE).exists():
                deal_tip_check(deal_id=deal_id)
                if cancels_done.is_set():
                    break
        finally:
            connections.close_all()

    checking = [threading.Thread(target=tip_checks) for _ in range(checkers)]
    cancelling = [threading.Thread(target=cancel, args=(order,)) for order in leaving]
    for thread in checking + cancelling:
        thread.start()
    for thread in cancelling:
        thread.join(60)
    cancels_done.set()
    for thread in checking:
        thread.join(60)
    assert not any(thread.is_alive() for thread in checking + cancelling)
    return outcomes


@pytest.mark.postgres
def test_buyers_cancelling_while_tip_checks_run_never_tip_a_deal_short(merchant):
    # Rounds of one deal each: nine buyers hold a unit, the tipping point is seven, and three of them
    # cancel while four threads keep running the tip check. Whenever the deal tips, the buyers counted
    # in the transaction that tipped it (and the buyers paid in the end) are at least seven.
    counted_at_tip: dict[int, int] = {}
    real_advance = deal_services.advance

    def advance_and_count(graph: Any, rows: Any, to_state: str, **also: Any) -> int:
        moved = real_advance(graph, rows, to_state, **also)
        if moved and to_state == DealState.TIPPED:
            deal_id = rows.values_list("id", flat=True).get()
            counted_at_tip[deal_id] = deal_buyers_counted(deal_id=deal_id)
        return moved

    outcomes: list[str] = []
    tipped = 0
    with mock.patch.object(deal_services, "advance", advance_and_count):
        for round_ in range(12):
            deal = live_deal(merchant, title=f"round {round_}", tipping_point=7, deal_price=1_000)
            placed = buyers_holding(deal, 9, f"r{round_}x")
            results = cancels_racing_tip_checks(deal.id, placed[-3:], checkers=4)
            outcomes += results
            deal_tip_check(deal_id=deal.id)  # the check the last cancel's moment may still owe
            deal.refresh_from_db()
            paid_buyers = (
                Order.objects.filter(deal=deal, state=OrderState.CAPTURED)
                .values("buyer_id")
                .distinct()
                .count()
            )
            if deal.state == DealState.TIPPED:
                tipped += 1
                assert counted_at_tip[deal.id] >= 7
                assert paid_buyers >= 7
                assert results.count("cancelled") <= 2
                assert not Order.objects.filter(deal=deal, state=OrderState.AUTHORIZED).exists()
            else:
                assert deal.state == DealState.LIVE
                assert results == ["cancelled"] * 3
                assert deal_buyers_counted(deal_id=deal.id) == 6
                assert paid_buyers == 0
            kept = Order.objects.filter(deal=deal, state__in=(OrderState.AUTHORIZED, OrderState.CAPTURED))
            assert deal.sold == kept.aggregate(units=Sum("quantity"))["units"]
    assert set(outcomes) <= {"cancelled", "not_cancellable"}
    assert tipped == len(counted_at_tip)
    assert ledger_report().ok
