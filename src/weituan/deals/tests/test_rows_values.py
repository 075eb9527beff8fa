"""The values the checkout's hand-written INSERTs send are the ORM's own, for every field of every row."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.utils import timezone

from weituan.deals.models import Account, Entry, Order, OrderState, Posting, UserDealQuota
from weituan.deals.services.rows import values_preparers

pytestmark = pytest.mark.django_db


def _as_orm(instance: Model) -> list[tuple[type, Any]]:
    fields = list(type(instance)._meta.concrete_fields)
    return [(type(value), value) for value in
            (field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields)]  # fmt: skip


def _as_prepared(instance: Model) -> list[tuple[type, Any]]:
    fields = list(type(instance)._meta.concrete_fields)
    return [
        (type(value), value)
        for value in (prepare(instance) for prepare in values_preparers(type(instance), fields))
    ]


def _same(instance: Model, auto_now: tuple[str, ...] = ()) -> None:
    """The prepared values are the ORM's (type and value); an auto_now_add time is compared by type,
    as each call stamps its own."""
    prepared, orm = _as_prepared(instance), _as_orm(instance)
    fields = [field.attname for field in type(instance)._meta.concrete_fields]
    for name, mine, theirs in zip(fields, prepared, orm, strict=True):
        if name in auto_now:
            assert mine[0] is theirs[0], name
        else:
            assert mine == theirs, name


def test_an_order_row_is_made_as_the_orm_makes_it(shopper, make_live_deal) -> None:
    deal = make_live_deal()
    now = timezone.now()
    order = Order(
        id=9_000_001, deal=deal, buyer_id=shopper.id, quantity=2, gift_quantity=1, unit_price=9_900,
        amount=19_800, currency="CNY", gateway="wallet", payment_ref="wallet", state=OrderState.AUTHORIZED,
        state_changed_at=now, client_key="k-1", share_code="Ab12", share_link_id=77,
    )  # fmt: skip
    _same(order, auto_now=("created_at",))
    assert order.created_at is not None  # stamped by pre_save, as the ORM's INSERT stamps it
    # NULLs, a time in another zone, and values of other types than the plain ones (each converted as
    # the ORM converts it: a bool and a numeric string in an integer, a naive time, an int as text).
    order.client_key = None
    order.share_link_id = None
    order.captured_at = now.astimezone(timezone.get_fixed_timezone(480))
    order.quantity = True
    order.unit_price = "9900"
    order.currency = 156
    with pytest.warns(RuntimeWarning):
        order.reserve_expires_at = datetime(2030, 1, 1, 12, 0)
        _same(order, auto_now=("created_at",))


def test_ledger_and_quota_rows_are_made_as_the_orm_makes_them(shopper, make_live_deal) -> None:
    deal = make_live_deal()
    account = Account.objects.create(kind="wallet", owner=shopper, currency="CNY", identity="wallet:x:CNY")
    posting = Posting(kind="authorize", key="order:1:authorize", order_id=None, memo="")
    _same(posting, auto_now=("created_at",))
    posting.id = 5
    _same(Entry(posting=posting, account=account, amount=-9_900))
    _same(Entry(posting_id=5, account_id=account.id, amount=2**40))
    _same(UserDealQuota(deal=deal, user=shopper, own=1, gifts=0))
    _same(Order(deal_id=deal.id, buyer_id=shopper.id, quantity=1, unit_price=1, amount=1, currency="CNY",
                state_changed_at=datetime(2030, 1, 1, tzinfo=UTC) + timedelta(microseconds=7)), auto_now=("created_at",))  # fmt: skip
