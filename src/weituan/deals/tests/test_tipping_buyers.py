"""The tipping point is a number of buyers, not of units: who counts, when, and what the card shows."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone, translation

from weituan.core.testing import make_user
from weituan.deals.facade import deal_card, deal_card_html
from weituan.deals.models import Deal, DealState, Order, OrderState, UserDealQuota
from weituan.deals.queries import deal_buyers_counted, ledger_report
from weituan.deals.services.deals import deal_end, deal_tip_check, deals_sweep
from weituan.deals.services.holds import order_cancel
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def people(fund, n, prefix="tb"):
    found = [make_user(f"{prefix}{i}") for i in range(n)]
    for person in found:
        fund(person)
    return found


def tally(deal):
    """(state, units taken, buyers holding units, buyers counted towards the tipping point)"""
    deal.refresh_from_db()
    return deal.state, deal.sold, deal.takers, deal_buyers_counted(deal_id=deal.id)


def card_line(deal_id):
    card = deal_card(deal_id)
    assert card is not None
    return card.buyers, card.progress_percent, card.tipped


def test_one_buyer_taking_three_units_does_not_tip_a_deal_of_three_buyers(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=3, per_user_limit=3)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=3)
    assert deal_tip_check(deal_id=deal.id) is False
    assert deals_sweep()["tipped"] == 0
    assert tally(deal) == (DealState.LIVE, 3, 1, 1)
    assert card_line(deal.id) == (1, 33, False)
    with translation.override("en"):
        assert "1 of 3 buyers needed" in deal_card_html(deal.id)
    with translation.override("zh-hans"):
        assert "已有 1 人 / 3 人成团" in deal_card_html(deal.id)
    # The window ends with one buyer: the deal fails and the hold is released.
    Deal.objects.filter(id=deal.id).update(
        starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() - timedelta(seconds=1)
    )
    assert deal_end(deal_id=deal.id) == DealState.FAILED
    order.refresh_from_db()
    assert order.state == OrderState.VOIDED
    assert tally(deal) == (DealState.FAILED, 0, 0, 0)


def test_three_buyers_tip_it(make_live_deal, fund):
    deal = make_live_deal(tipping_point=3, per_user_limit=2)
    a, b, c = people(fund, 3)
    order_place(deal_id=deal.id, buyer=a, quantity=2)
    order_place(deal_id=deal.id, buyer=b, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is False
    assert card_line(deal.id) == (2, 66, False)
    order_place(deal_id=deal.id, buyer=c, quantity=1)
    assert tally(deal) == (DealState.LIVE, 4, 3, 3)
    assert card_line(deal.id) == (3, 100, False)  # the check that tips it is on its way
    assert deal_tip_check(deal_id=deal.id) is True
    assert deal_tip_check(deal_id=deal.id) is False  # once
    assert tally(deal) == (DealState.TIPPED, 4, 3, 3)
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.CAPTURED}
    assert card_line(deal.id) == (None, 100, True)
    assert ledger_report().ok


def test_a_cancellation_before_tipping_takes_the_buyer_out_of_the_count(make_live_deal, fund):
    deal = make_live_deal(tipping_point=3, per_user_limit=2)
    a, b, c, d = people(fund, 4)
    first_of_a = order_place(deal_id=deal.id, buyer=a, quantity=1)
    order_place(deal_id=deal.id, buyer=a, quantity=1)
    order_place(deal_id=deal.id, buyer=b, quantity=1)
    of_c = order_place(deal_id=deal.id, buyer=c, quantity=1)
    assert tally(deal) == (DealState.LIVE, 4, 3, 3)
    # The tip check has not run yet when c withdraws: the deal is one buyer short again.
    order_cancel(order_id=of_c.id, by=c)
    assert tally(deal) == (DealState.LIVE, 3, 2, 2)
    assert deal_tip_check(deal_id=deal.id) is False
    assert card_line(deal.id) == (2, 66, False)
    # a withdraws one of two orders and still holds the other: still one buyer.
    order_cancel(order_id=first_of_a.id, by=a)
    assert tally(deal) == (DealState.LIVE, 2, 2, 2)
    assert UserDealQuota.objects.get(deal=deal, user=a).own == 1
    assert deals_sweep()["tipped"] == 0
    order_place(deal_id=deal.id, buyer=d, quantity=1)
    assert deals_sweep()["tipped"] == 1
    assert tally(deal) == (DealState.TIPPED, 3, 3, 3)
    assert Order.objects.get(id=of_c.id).state == OrderState.VOIDED
    assert ledger_report().ok


def test_gifts_beyond_the_per_user_limit_count_as_one_buyer(shopper, make_live_deal, fund):
    deal = make_live_deal(tipping_point=2, per_user_limit=1, gift_limit=2)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=3, gift_quantity=2)
    assert (order.quantity, order.gift_quantity, order.state) == (3, 2, OrderState.AUTHORIZED)
    assert deal_tip_check(deal_id=deal.id) is False
    assert tally(deal) == (DealState.LIVE, 3, 1, 1)
    (friend,) = people(fund, 1)
    order_place(deal_id=deal.id, buyer=friend, quantity=1)
    assert deal_tip_check(deal_id=deal.id) is True
    assert tally(deal) == (DealState.TIPPED, 4, 2, 2)


def test_members_of_a_team_count_once_it_fills(make_live_deal, fund):
    deal = make_live_deal(tipping_point=2, per_user_limit=2, team_price=5_000, team_size=2)
    a, b, c = people(fund, 3)
    leader = order_place(deal_id=deal.id, buyer=a, quantity=1, team="start")
    # The unit is taken and a holds a payment, but the team may still fail: a does not count yet.
    assert tally(deal) == (DealState.LIVE, 1, 1, 0)
    order_place(deal_id=deal.id, buyer=c, quantity=2)
    # Three units and two buyers holding them, but only c counts: one buyer of two.
    assert tally(deal) == (DealState.LIVE, 3, 2, 1)
    assert deal_tip_check(deal_id=deal.id) is False
    assert card_line(deal.id) == (1, 50, False)
    order_place(deal_id=deal.id, buyer=b, quantity=1, team=leader.team_id)
    assert tally(deal) == (DealState.LIVE, 4, 3, 3)
    assert deal_tip_check(deal_id=deal.id) is True
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.CAPTURED}


def test_the_merchant_sees_the_buyers_the_tipping_point_counts(merchant, make_live_deal, fund):
    deal = make_live_deal(tipping_point=3, per_user_limit=3)
    (buyer,) = people(fund, 1)
    order_place(deal_id=deal.id, buyer=buyer, quantity=3)
    seller = Client(HTTP_ACCEPT_LANGUAGE="en")
    seller.force_login(merchant)
    page = seller.get(f"/merchant/deals/{deal.id}/progress").content.decode()
    assert "<dd>3 / 10</dd>" in page  # units
    assert "<dd>1 (tipping point 3)</dd>" in page  # buyers
