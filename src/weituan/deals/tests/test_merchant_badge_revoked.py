"""A merchant whose V badge an operator takes away keeps the deals it has: they stay on sale, its buyers'
vouchers are redeemed and it is paid; only making and publishing new deals needs the badge again."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from weituan.accounts.services import (
    merchant_application_approve,
    merchant_apply,
    merchant_verification_revoke,
)
from weituan.core.errors import PermissionDenied
from weituan.deals.models import Deal, DealState, OrderState, VoucherState
from weituan.deals.services.deals import DealInput, deal_create, deal_publish, deal_tip_check
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def _logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def _draft(merchant):
    now = timezone.now()
    return deal_create(
        merchant=merchant,
        data=DealInput(
            title="周末早午餐",
            list_price=12000,
            deal_price=6900,
            max_quantity=10,
            tipping_point=1,
            per_user_limit=2,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=2),
        ),
    )


def test_revoking_with_a_live_deal_is_allowed_and_the_deal_keeps_running(
    merchant, shopper, outsider, operator, make_live_deal, fund
):
    deal = make_live_deal(tipping_point=1)
    draft = _draft(merchant)
    fund(shopper)
    fund(outsider)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED

    staff = _logged_in(operator)
    done = staff.post(
        reverse("accounts:operator_merchant_revoke", kwargs={"user_id": merchant.pk}), {"confirm": "on"}
    )
    assert done.status_code == 302
    merchant.refresh_from_db()
    assert (merchant.is_merchant, merchant.is_verified_merchant) == (True, False)

    # The deal is still on sale, and sells.
    assert Deal.objects.get(id=deal.id).state == DealState.TIPPED
    later = order_place(deal_id=deal.id, buyer=outsider, quantity=1)
    assert later.deal_id == deal.id

    # The merchant still serves its buyers: its deal pages, redeeming a voucher, its payouts.
    shop = _logged_in(merchant)
    assert shop.get(reverse("deals:merchant_deals")).status_code == 200
    assert shop.get(reverse("deals:merchant_deal", kwargs={"deal_id": deal.id})).status_code == 200
    assert shop.get(reverse("deals:merchant_payouts")).status_code == 200
    voucher = order.vouchers.get()
    redeemed = shop.post(reverse("deals:merchant_redeem"), {"code": voucher.code})
    assert redeemed.status_code == 200
    voucher.refresh_from_db()
    assert voucher.state == VoucherState.REDEEMED

    # But it makes and publishes no new deal until verified again, on the page or through the services.
    apply_page = reverse("accounts:merchant_apply")
    assert shop.get(reverse("deals:merchant_deal_new"))["Location"] == apply_page
    published = shop.post(reverse("deals:merchant_publish", kwargs={"deal_id": draft.id}))
    assert published["Location"] == apply_page
    with pytest.raises(PermissionDenied) as refused:
        deal_publish(deal_id=draft.id, by=merchant)
    assert refused.value.code == "not_merchant"
    assert Deal.objects.get(id=draft.id).state == DealState.DRAFT


def test_a_merchant_verified_again_publishes_again(merchant, operator):
    draft = _draft(merchant)
    merchant_verification_revoke(operator=operator, user_id=merchant.pk)
    merchant.refresh_from_db()
    with pytest.raises(PermissionDenied):
        deal_publish(deal_id=draft.id, by=merchant)
    application = merchant_apply(user=merchant, shop_name="美团小店")
    merchant_application_approve(operator=operator, application_id=application.pk)
    merchant.refresh_from_db()
    assert deal_publish(deal_id=draft.id, by=merchant).state == DealState.LIVE
