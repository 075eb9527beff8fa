"""The statements one order costs: the checkout path is a handful of statements in one transaction."""

import pytest
from django.db import connection

from weituan.deals.models import Order, OrderState, Posting, Voucher
from weituan.deals.queries import ledger_report, wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db

# PostgreSQL locks the buyer's wallet row in a statement of its own (SQLite's write lock is BEGIN
# IMMEDIATE), and writes the postings with their entries, and the quota with the stock, in one statement
# each: one statement fewer. A live deal's order is sent as one batch there, which first has the
# transaction's prepared statements run on their generic plans: one more.
ENGINE = -1 if connection.vendor == "postgresql" else 0
BATCHED = 1 if connection.vendor == "postgresql" else 0


def test_an_order_on_a_live_deal_is_ten_statements(shopper, make_live_deal, fund, django_assert_num_queries):
    deal = make_live_deal(tipping_point=5, max_quantity=10, per_user_limit=5)
    fund(shopper, 100_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)  # creates the buyer's held account
    # deal (+ the key's earlier order), savepoint, order, accounts + balance, posting, entries, outbox
    # event, quota, stock, release.
    with django_assert_num_queries(10 + ENGINE + BATCHED):
        order = order_place(deal_id=deal.id, buyer=shopper, quantity=1, client_key="k-1")
    assert order.state == OrderState.AUTHORIZED
    # A retry with the same key reads the deal and the order it placed, and writes nothing.
    with django_assert_num_queries(2):
        assert order_place(deal_id=deal.id, buyer=shopper, quantity=1, client_key="k-1").id == order.id
    deal.refresh_from_db()
    assert (deal.sold, Order.objects.count()) == (2, 2)
    assert (wallet_of(user=shopper).available, wallet_of(user=shopper).held) == (100_000 - 2 * 9900, 2 * 9900)


def test_an_order_on_a_tipped_deal_is_paid_in_the_same_transaction(
    shopper, make_live_deal, fund, django_assert_num_queries
):
    deal = make_live_deal(tipping_point=1, max_quantity=10, per_user_limit=5)
    fund(shopper, 100_000)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    # As above, plus the capture posting's accounts in the same read, the vouchers, the referral lookup
    # and the `order_paid` event.
    with django_assert_num_queries(13 + ENGINE):
        order = order_place(deal_id=deal.id, buyer=shopper, quantity=2)
    assert order.state == OrderState.CAPTURED
    assert Voucher.objects.filter(order=order).count() == 2
    assert list(Posting.objects.filter(order=order).order_by("id").values_list("kind", flat=True)) == [
        "authorize",
        "capture",
    ]
    assert (wallet_of(user=shopper).available, wallet_of(user=shopper).held) == (100_000 - 3 * 9900, 0)
    report = ledger_report()
    assert report.ok and report.totals == {"CNY": 0}
