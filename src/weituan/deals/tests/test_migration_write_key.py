"""Migration 0017 makes the keys cancels and switches to the solo price kept (0016) into keys of every
write that keeps one: a key kept before it still answers its cancel, and each kept key answers with
exactly one row."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from weituan.deals.models import OrderState, WriteKey
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place
from weituan.deals.tests.conftest import live_deal

BEFORE = [("deals", "0016_order_write_key")]
AFTER = [("deals", "0017_write_key")]


def _migrate(targets: list[tuple[str, str]] | None = None) -> MigrationExecutor:
    """To `targets`, or to the latest migration of every app."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_a_key_kept_before_the_migration_still_answers_its_cancel(merchant, shopper, fund):
    deal = live_deal(merchant, tipping_point=5)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    order_cancel(order_id=order.id, by=shopper, client_key="before-1")

    try:
        executor = _migrate(BEFORE)
        kept = executor.loader.project_state(BEFORE[0]).apps.get_model("deals", "OrderWriteKey")
        assert list(kept.objects.values_list("sender_id", "key", "request", "order_id")) == [
            (shopper.id, "before-1", f"cancel:{order.id}", order.id)
        ]
        _migrate(AFTER)
    finally:
        _migrate()  # the next tests run on the latest schema, whatever happened here

    assert list(
        WriteKey.objects.values_list("sender_id", "key", "request", "order_id", "team_id", "deal_id")
    ) == [(shopper.id, "before-1", f"cancel:{order.id}", order.id, None, None)]
    again = order_cancel(order_id=order.id, by=shopper, client_key="before-1")
    assert (again.id, again.state) == (order.id, OrderState.VOIDED)


@pytest.mark.django_db
def test_a_kept_key_answers_with_exactly_one_row(merchant, shopper, fund):
    deal = live_deal(merchant, tipping_point=5)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    for answers in ({}, {"order_id": order.id, "deal_id": deal.id}):
        with pytest.raises(IntegrityError), transaction.atomic():
            WriteKey.objects.create(sender=shopper, key="k-1", request=f"cancel:{order.id}", **answers)
    assert not WriteKey.objects.exists()
