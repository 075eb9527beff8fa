"""The ledger is append-only in the database: an UPDATE or a DELETE of a posting or an entry is refused,
and so is a DELETE of an account or an UPDATE changing what identifies it, through the ORM or in raw SQL,
on SQLite and on PostgreSQL; only a flush of the whole database erases them."""

import importlib
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from weituan.core.testing import make_user
from weituan.deals.models import Account, AccountKind, Entry, Posting
from weituan.deals.models.ledger import LEDGER_ERASURE_TABLE
from weituan.deals.queries import ledger_report
from weituan.deals.services import ledger
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up

APPEND_ONLY = importlib.import_module("weituan.deals.migrations.0007_ledger_append_only")


def _ledger() -> list[tuple[Any, ...]]:
    """Every account, posting and entry as stored."""
    accounts = list(
        Account.objects.order_by("id").values_list("id", "kind", "owner_id", "name", "currency", "identity")
    )
    postings = list(Posting.objects.order_by("id").values_list("id", "kind", "key", "order_id", "memo"))
    entries = list(
        Entry.objects.order_by("id").values_list("id", "posting_id", "account_id", "amount", "balance")
    )
    return [*accounts, *postings, *entries]


def _refused(change: Any) -> None:
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        change()
    assert "the ledger is append-only" in str(refused.value)


def _sql(statement: str, params: list[Any] | None = None) -> Any:
    def run() -> None:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)

    return run


def _triggers() -> set[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN"
                " ('deals_posting'::regclass, 'deals_entry'::regclass, 'deals_account'::regclass)"
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_postings_and_entries_are_never_updated_or_deleted(shopper: Any, make_live_deal: Any) -> None:
    deal = make_live_deal(tipping_point=5)
    wallet_top_up(user=shopper, amount=50_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    empty = Posting.objects.create(kind="manual", key="no-entries-yet")  # nothing protects it but the trigger
    entry = Entry.objects.filter(balance__isnull=False).order_by("id").first()
    assert entry is not None
    before = _ledger()

    # Through the ORM.
    _refused(lambda: Entry.objects.filter(id=entry.id).update(amount=entry.amount + 1))
    _refused(lambda: Entry.objects.update(balance=None))
    entry.amount += 1
    _refused(lambda: entry.save(update_fields=["amount"]))
    _refused(lambda: Entry.objects.filter(id=entry.id).delete())
    _refused(lambda: Posting.objects.filter(id=empty.id).update(memo="edited"))
    _refused(lambda: empty.delete())
    # In raw SQL, one row or all of them.
    _refused(_sql("UPDATE deals_entry SET amount = amount + 1 WHERE id = %s", [entry.id]))
    _refused(_sql("UPDATE deals_posting SET kind = 'capture'"))
    _refused(_sql("DELETE FROM deals_entry WHERE id = %s", [entry.id]))
    _refused(_sql("DELETE FROM deals_entry"))
    _refused(_sql("DELETE FROM deals_posting WHERE id = %s", [empty.id]))
    _refused(_sql("DELETE FROM deals_posting"))

    assert _ledger() == before
    assert Entry.objects.aggregate(total=Sum("amount"))["total"] == 0
    # New postings are still written, and the ledger still proves itself.
    wallet_top_up(user=shopper, amount=1_000)
    assert len(_ledger()) == len(before) + 3
    call_command("ledger", "check")
    assert ledger_report().ok


@pytest.mark.django_db
def test_accounts_keep_their_identity_and_are_never_deleted(
    shopper: Any, merchant: Any, make_live_deal: Any
) -> None:
    deal = make_live_deal(tipping_point=1)
    wallet_top_up(user=shopper, amount=50_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)  # captured: the held, merchant and fee accounts too
    wallet = ledger.wallet_account(shopper.id, "CNY")
    unused = ledger.held_account(make_user("no_orders_yet").id, "CNY")  # no entry protects it
    fee = ledger.platform_fee_account("CNY")
    before = _ledger()
    assert {kind for _, kind, *_ in before[: Account.objects.count()]} == {
        AccountKind.GATEWAY, AccountKind.WALLET, AccountKind.HELD, AccountKind.MERCHANT_PAYABLE,
        AccountKind.PLATFORM_FEE,
    }  # fmt: skip

    # Every identifying column, through the ORM.
    _refused(lambda: Account.objects.filter(id=wallet.id).update(currency="USD"))
    _refused(lambda: Account.objects.filter(id=wallet.id).update(kind=AccountKind.MERCHANT_PAYABLE))
    _refused(lambda: Account.objects.filter(id=wallet.id).update(owner=merchant))
    _refused(lambda: Account.objects.filter(id=unused.id).update(owner=None))
    _refused(lambda: Account.objects.filter(id=fee.id).update(name="elsewhere"))
    _refused(lambda: Account.objects.filter(id=wallet.id).update(identity=f"wallet:{merchant.id}:CNY"))
    _refused(lambda: Account.objects.filter(id=unused.id).update(id=unused.id + 1000))
    wallet.currency = "USD"
    _refused(lambda: wallet.save(update_fields=["currency"]))
    # (An account with entries the ORM itself refuses to delete: Entry.account is PROTECT.)
    _refused(lambda: unused.delete())
    _refused(lambda: Account.objects.filter(id=unused.id).delete())
    # In raw SQL, one row or all of them.
    _refused(_sql("UPDATE deals_account SET owner_id = %s WHERE id = %s", [merchant.id, unused.id]))
    _refused(_sql("UPDATE deals_account SET currency = 'USD'"))
    _refused(_sql("DELETE FROM deals_account WHERE id = %s", [unused.id]))
    _refused(_sql("DELETE FROM deals_account"))
    assert _ledger() == before

    # Writing an account's columns as they are changes nothing and passes, and the ledger's writers
    # still lock accounts (SELECT ... FOR UPDATE).
    Account.objects.get(id=unused.id).save()
    _sql("UPDATE deals_account SET kind = kind, owner_id = owner_id, name = name")()
    with transaction.atomic():
        assert ledger.balance_locked(wallet) == 50_000 - 9_900
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert _ledger()[: Account.objects.count()] == before[: Account.objects.count()]
    call_command("ledger", "check")
    assert ledger_report().ok


@pytest.mark.django_db
def test_the_triggers_are_in_place() -> None:
    # On SQLite a migration rebuilding one of these tables would drop its triggers: it must add them back.
    accounts = {"deals_account_no_update", "deals_account_no_delete"}
    if connection.vendor == "postgresql":
        expected = {"deals_posting_append_only", "deals_entry_append_only", *accounts}
    else:
        expected = {
            f"{table}_no_{op}" for table in ("deals_posting", "deals_entry") for op in ("update", "delete")
        } | accounts
    assert _triggers() >= expected


@pytest.mark.django_db(transaction=True)
def test_a_flush_erases_the_ledger_and_leaves_it_guarded(shopper: Any) -> None:
    wallet_top_up(user=shopper, amount=1_000)
    assert (Account.objects.count(), Entry.objects.count()) == (2, 2)
    call_command("flush", interactive=False, verbosity=0)
    assert (Account.objects.count(), Posting.objects.count(), Entry.objects.count()) == (0, 0, 0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {LEDGER_ERASURE_TABLE}")
            assert cursor.fetchone()[0] == 0
    # Written again after the flush, the ledger is guarded as before.
    buyer = make_user("after_flush")
    wallet_top_up(user=buyer, amount=500)
    _refused(_sql("DELETE FROM deals_entry"))
    _refused(_sql("UPDATE deals_entry SET amount = 0"))
    _refused(_sql("DELETE FROM deals_account"))
    _refused(_sql("UPDATE deals_account SET currency = 'USD'"))
    assert (Account.objects.count(), Entry.objects.count()) == (2, 2)


def drop_triggers_in_this_transaction() -> None:
    """For a test that must write the ledger as code before the triggers did (rolled back with the test)."""
    with connection.cursor() as cursor:
        for statement in APPEND_ONLY.DROP_TRIGGERS[connection.vendor]:
            cursor.execute(statement)
