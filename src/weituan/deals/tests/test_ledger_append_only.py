"""The ledger is append-only in the database: an UPDATE or a DELETE of a posting or an entry is refused,
through the ORM or in raw SQL, on SQLite and on PostgreSQL; only a flush of the whole database erases
them."""

import importlib
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from weituan.deals.models import Entry, Posting
from weituan.deals.models.ledger import LEDGER_ERASURE_TABLE
from weituan.deals.queries import ledger_report
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up

APPEND_ONLY = importlib.import_module("weituan.deals.migrations.0007_ledger_append_only")


def _ledger() -> list[tuple[Any, ...]]:
    """Every posting and entry as stored."""
    postings = list(Posting.objects.order_by("id").values_list("id", "kind", "key", "order_id", "memo"))
    entries = list(
        Entry.objects.order_by("id").values_list("id", "posting_id", "account_id", "amount", "balance")
    )
    return [*postings, *entries]


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
                " ('deals_posting'::regclass, 'deals_entry'::regclass)"
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
def test_the_triggers_are_in_place() -> None:
    # On SQLite a migration rebuilding one of these tables would drop its triggers: it must add them back.
    if connection.vendor == "postgresql":
        expected = {"deals_posting_append_only", "deals_entry_append_only"}
    else:
        expected = {
            f"{table}_no_{op}" for table in ("deals_posting", "deals_entry") for op in ("update", "delete")
        }
    assert _triggers() >= expected


@pytest.mark.django_db(transaction=True)
def test_a_flush_erases_the_ledger_and_leaves_it_guarded(shopper: Any) -> None:
    wallet_top_up(user=shopper, amount=1_000)
    assert Entry.objects.count() == 2
    call_command("flush", interactive=False, verbosity=0)
    assert (Posting.objects.count(), Entry.objects.count()) == (0, 0)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {LEDGER_ERASURE_TABLE}")
            assert cursor.fetchone()[0] == 0
    # Written again after the flush, the ledger is guarded as before.
    from weituan.core.testing import make_user

    buyer = make_user("after_flush")
    wallet_top_up(user=buyer, amount=500)
    _refused(_sql("DELETE FROM deals_entry"))
    _refused(_sql("UPDATE deals_entry SET amount = 0"))
    assert Entry.objects.count() == 2


def drop_triggers_in_this_transaction() -> None:
    """For a test that must write the ledger as code before the triggers did (rolled back with the test)."""
    with connection.cursor() as cursor:
        for statement in APPEND_ONLY.DROP_TRIGGERS[connection.vendor]:
            cursor.execute(statement)
