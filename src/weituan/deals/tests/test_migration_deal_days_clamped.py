"""Deals saved with a voucher validity or refund window beyond today's bounds are brought down to them
by migration 0014, and such a deal then settles; deals within the bounds are left as they were."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from weituan.deals.models import Deal, Order, Voucher
from weituan.deals.services.deals import REFUND_WINDOW_DAYS_MAX, VOUCHER_VALID_DAYS_MAX, deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.tests.conftest import live_deal

BEFORE = [("deals", "0013_order_end_reason")]
AFTER = [("deals", "0014_deal_days_clamped")]


def _migrate(targets: list[tuple[str, str]] | None = None) -> None:
    """To `targets`, or to the latest migration of every app."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_days_beyond_the_bounds_are_clamped_and_the_deal_settles(merchant, shopper, fund):
    absurd = live_deal(merchant, tipping_point=1)
    within = live_deal(merchant, title="烤鸭", voucher_valid_days=30, refund_window_days=0)
    at_bounds = live_deal(
        merchant,
        title="奶茶",
        voucher_valid_days=VOUCHER_VALID_DAYS_MAX,
        refund_window_days=REFUND_WINDOW_DAYS_MAX,
    )
    # As the web editor saved them before the service bounded them.
    Deal.objects.filter(pk=absurd.pk).update(voucher_valid_days=1_000_000_000, refund_window_days=10**9)
    fund(shopper)
    order = order_place(deal_id=absurd.id, buyer=shopper, quantity=1)

    _migrate(BEFORE)
    try:
        _migrate(AFTER)
    finally:
        _migrate()  # the next tests run on the latest schema, whatever happened here

    days = dict(Deal.objects.values_list("pk", "voucher_valid_days"))
    windows = dict(Deal.objects.values_list("pk", "refund_window_days"))
    assert (days[absurd.pk], windows[absurd.pk]) == (3650, 365)
    assert (days[within.pk], windows[within.pk]) == (30, 0)
    assert (days[at_bounds.pk], windows[at_bounds.pk]) == (3650, 365)
    # The numbers the migration writes out are the service's bounds.
    assert (VOUCHER_VALID_DAYS_MAX, REFUND_WINDOW_DAYS_MAX) == (3650, 365)

    deal_tip_check(deal_id=absurd.id)
    order.refresh_from_db()
    assert order.state == "captured"
    voucher = Voucher.objects.get(order=order)
    assert order.captured_at is not None
    assert voucher.expires_at.date() == (order.captured_at + timedelta(days=3650)).date()
    assert Order.objects.count() == 1
