"""A buyer wallet's running balance: written with each of its entries, read by every spend, and proved
against the entries by the ledger check; the ledger's references, which no constraint enforces, are
proved there too."""

import importlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.db.models import Sum

from weituan.core.errors import ServiceError
from weituan.core.testing import make_user
from weituan.deals.models import Account, AccountKind, Entry, Order, OrderState, Posting
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services import ledger
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.deals.tests.test_ledger_append_only import drop_triggers_in_this_transaction

RUNNING_BALANCES = importlib.import_module(
    "weituan.deals.migrations.0005_ledger_running_balance"
).RUNNING_BALANCES


def _wallet_entries(user: Any) -> list[tuple[int, int | None]]:
    wallet = Account.objects.get(identity=f"wallet:{user.id}:CNY")
    return list(Entry.objects.filter(account=wallet).order_by("posting_id").values_list("amount", "balance"))


@pytest.mark.django_db
def test_every_wallet_entry_carries_the_balance_after_it(merchant, shopper) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5, deal_price=100)
    wallet_top_up(user=shopper, amount=1_000)
    first = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    order_cancel(order_id=first.id, by=shopper)
    wallet_top_up(user=shopper, amount=50)

    assert _wallet_entries(shopper) == [(1_000, 1_000), (-200, 800), (-100, 700), (200, 900), (50, 950)]
    # Entries of every other account carry none.
    assert not Entry.objects.exclude(account__kind=AccountKind.WALLET).exclude(balance=None).exists()
    assert wallet_of(user=shopper).available == 950
    assert ledger.balance_of(ledger.wallet_account(shopper.id, "CNY")) == 950
    report = ledger_report()
    assert report.ok and report.running_balance_mismatches == [] and report.dangling_references == {}


@pytest.mark.django_db
def test_a_spend_is_refused_by_the_running_balance(merchant, shopper) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5, deal_price=300)
    wallet_top_up(user=shopper, amount=500)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    with pytest.raises(ServiceError) as refused:
        order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert refused.value.code == "insufficient_balance"
    assert _wallet_entries(shopper) == [(500, 500), (-300, 200)]


@pytest.mark.django_db
def test_paid_at_once_on_a_tipped_deal_keeps_the_running_balance(merchant, shopper) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=1, per_user_limit=5, deal_price=100)
    wallet_top_up(user=shopper, amount=1_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    order_place(deal_id=deal.id, buyer=shopper, quantity=3)  # authorized and captured in one transaction

    assert _wallet_entries(shopper) == [(1_000, 1_000), (-100, 900), (-300, 600)]
    assert ledger_report().ok


@pytest.mark.django_db
def test_one_write_may_not_name_a_wallet_twice(shopper) -> None:
    wallet = ledger.wallet_account(shopper.id, "CNY")
    top_up = ledger.gateway_account("top_up", "CNY")
    with pytest.raises(ledger.WalletEntriesClash):
        ledger.posting_write(kind="top_up", key="twice", lines=[(top_up, -20), (wallet, 10), (wallet, 10)])
    assert not Posting.objects.filter(key="twice").exists()


@pytest.mark.django_db
def test_the_ledger_check_finds_a_running_balance_that_disagrees(merchant, shopper) -> None:
    wallet_top_up(user=shopper, amount=1_000)
    wallet = ledger.wallet_account(shopper.id, "CNY")
    top_up = ledger.gateway_account("top_up", "CNY")
    # A balanced posting whose wallet entry claims 10 more than the entries say.
    posting = Posting.objects.create(kind="top_up", key="wrong-balance")
    wrong = Entry.objects.create(posting=posting, account=wallet, amount=100, balance=1_110)
    Entry.objects.create(posting=posting, account=top_up, amount=-100)
    report = ledger_report()
    assert report.running_balance_mismatches == [wrong.id]
    assert not report.ok
    assert report.totals == {"CNY": 0} and report.unbalanced_postings == []
    with pytest.raises(CommandError) as broken:
        call_command("ledger", "check")
    assert str(broken.value) == (
        f"ledger check failed: 1 entries whose running balance disagrees with the entries (first: {wrong.id})"
    )

    # A wallet entry without one, and another account's entry with one, are found too.
    later = Posting.objects.create(kind="top_up", key="no-balance")
    without = Entry.objects.create(posting=later, account=wallet, amount=50, balance=None)
    other = Entry.objects.create(posting=later, account=top_up, amount=-50, balance=-50)
    assert ledger_report().running_balance_mismatches == sorted([wrong.id, without.id, other.id])


@pytest.mark.django_db
def test_the_ledger_check_finds_references_to_rows_that_do_not_exist(merchant, shopper) -> None:
    wallet_top_up(user=shopper, amount=1_000)
    wallet = ledger.wallet_account(shopper.id, "CNY")
    missing = 10**9
    orphan = Posting.objects.create(kind="capture", key="orphan", order_id=missing)
    to_nowhere = Entry.objects.create(posting=orphan, account_id=missing, amount=5)
    Entry.objects.create(posting=orphan, account=wallet, amount=-5, balance=995)
    lost = Entry.objects.create(posting_id=missing, account=wallet, amount=0, balance=995)
    report = ledger_report()
    assert report.dangling_references == {
        "entry.account": [to_nowhere.id],
        "entry.posting": [lost.id],
        "posting.order": [orphan.id],
    }
    assert not report.ok


@pytest.mark.django_db
def test_the_ledger_rows_reference_without_database_constraints() -> None:
    # Enforced by the ledger's writers and proved by the ledger check instead (see models.ledger).
    with connection.cursor() as cursor:
        for model in (Entry, Posting):
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            assert [name for name, c in constraints.items() if c["foreign_key"]] == []
        orders = connection.introspection.get_constraints(cursor, Order._meta.db_table)
        assert any(c["foreign_key"] for c in orders.values())  # the order keeps its own


@pytest.mark.django_db
def test_the_migration_fills_in_the_running_balances_of_older_entries(merchant, shopper) -> None:
    deal = live_deal(merchant, max_quantity=10, tipping_point=5, per_user_limit=5, deal_price=100)
    other = make_user("other_buyer")
    for user in (shopper, other):
        wallet_top_up(user=user, amount=1_000)
        order_place(deal_id=deal.id, buyer=user, quantity=2)
        wallet_top_up(user=user, amount=30)
    written = {user.id: _wallet_entries(user) for user in (shopper, other)}
    # The migration ran before the ledger refused updates (0007): so does this test, in its transaction.
    drop_triggers_in_this_transaction()
    Entry.objects.update(balance=None)  # as entries written before the running balance were

    with connection.cursor() as cursor:
        cursor.execute(RUNNING_BALANCES)
    assert {user.id: _wallet_entries(user) for user in (shopper, other)} == written
    assert written[shopper.id] == [(1_000, 1_000), (-200, 800), (30, 830)]
    assert not Entry.objects.exclude(account__kind=AccountKind.WALLET).exclude(balance=None).exists()
    assert ledger_report().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_spends_top_ups_and_refunds_of_one_wallet_keep_its_running_balance(merchant) -> None:
    # Every writer of the wallet's entries at once: batched orders (a deal not tipped), orders paid at
    # once (a tipped deal, the step-by-step path), top-ups and cancellations (the ledger's posting_write).
    pending = live_deal(merchant, max_quantity=500, tipping_point=500, per_user_limit=500, deal_price=700)
    tipped = live_deal(merchant, max_quantity=500, tipping_point=1, per_user_limit=500, deal_price=300)
    buyer = make_user("busy_wallet")
    wallet_top_up(user=buyer, amount=5_000)
    order_place(deal_id=tipped.id, buyer=buyer, quantity=1)
    deal_tip_check(deal_id=tipped.id)
    cancellable = [order_place(deal_id=pending.id, buyer=buyer, quantity=1) for _ in range(4)]

    def act(index: int) -> str:
        try:
            kind = index % 4
            if kind == 0:
                order_place(deal_id=pending.id, buyer=buyer, quantity=1)
            elif kind == 1:
                order_place(deal_id=tipped.id, buyer=buyer, quantity=1)
            elif kind == 2:
                wallet_top_up(user=buyer, amount=200)
            elif index // 4 < len(cancellable):
                order_cancel(order_id=cancellable[index // 4].id, by=buyer)
            return "ok"
        except ServiceError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(act, range(64)))

    assert set(outcomes) <= {"ok", "insufficient_balance"}
    assert outcomes.count("insufficient_balance") > 0  # the wallet ran dry while others still spent
    wallet = Account.objects.get(identity=f"wallet:{buyer.id}:CNY")
    total = Entry.objects.filter(account=wallet).aggregate(t=Sum("amount"))["t"]
    entries = _wallet_entries(buyer)
    assert entries[-1][1] == total >= 0
    running = 0
    for amount, balance in entries:
        running += amount
        assert balance == running
    spent = Order.objects.filter(buyer=buyer).exclude(state=OrderState.VOIDED).aggregate(t=Sum("amount"))["t"]
    assert total == 5_000 + 200 * outcomes[2::4].count("ok") - spent
    report = ledger_report()
    assert report.ok, report.problems()
