from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from weituan.core.errors import ValidationFailed
from weituan.core.testing import make_user
from weituan.deals.errors import LimitReached, NotYourDeal, SoldOut
from weituan.deals.models import Deal, DealState, FlashBatch, OrderState
from weituan.deals.pricing import capture_split, discount_percent, fee_per_unit
from weituan.deals.services.deals import DealInput, deal_create, deal_publish, deal_tip_check, deals_sweep
from weituan.deals.services.orders import order_place

pytestmark = pytest.mark.django_db


def data(**overrides: Any) -> DealInput:
    now = timezone.now()
    fields: dict[str, Any] = {
        "title": "秒杀 月饼礼盒",
        "list_price": 30000,
        "deal_price": 9900,
        "max_quantity": 4,
        "tipping_point": 1,
        "starts_at": now + timedelta(hours=1),
        "ends_at": now + timedelta(days=1),
    }
    fields.update(overrides)
    return DealInput(**fields)


def test_scheduled_deal_goes_live_and_closes_by_sweep(merchant, shopper, fund):
    deal = deal_create(merchant=merchant, data=data())
    deal = deal_publish(deal_id=deal.id, by=merchant)
    assert deal.state == DealState.SCHEDULED
    later = timezone.now() + timedelta(hours=2)
    Deal.objects.filter(id=deal.id).update(starts_at=timezone.now() - timedelta(minutes=1))
    deals_sweep()
    assert Deal.objects.get(id=deal.id).state == DealState.LIVE
    fund(shopper)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    Deal.objects.filter(id=deal.id).update(ends_at=later - timedelta(minutes=30))
    deals_sweep(now=later)
    assert Deal.objects.get(id=deal.id).state == DealState.CLOSED
    deals_sweep(now=later)  # running it again changes nothing
    assert Deal.objects.get(id=deal.id).state == DealState.CLOSED


def test_the_sweep_tips_a_deal_whose_tip_check_was_lost(merchant, shopper, fund):
    # In this test's transaction no on-commit hook runs: the tip check the order asked for is never
    # enqueued, as when the process dies between the order's commit and the enqueue.
    now = timezone.now()
    deal = deal_create(
        merchant=merchant, data=data(starts_at=now - timedelta(minutes=1), tipping_point=2, per_user_limit=2)
    )
    deal = deal_publish(deal_id=deal.id, by=merchant)
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert deals_sweep()["tipped"] == 0  # one buyer of the two the deal needs
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert deals_sweep()["tipped"] == 0  # two units, but still one buyer
    friend = make_user("bob")
    fund(friend)
    order_place(deal_id=deal.id, buyer=friend, quantity=1)
    assert Deal.objects.get(id=deal.id).state == DealState.LIVE
    assert deals_sweep()["tipped"] == 1
    assert Deal.objects.get(id=deal.id).state == DealState.TIPPED
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    assert deals_sweep()["tipped"] == 0  # running it again changes nothing


def test_the_sweep_marks_sold_out_a_tipped_deal_whose_last_unit_was_sold_without_its_check(
    merchant, shopper, fund
):
    now = timezone.now()
    data_ = data(starts_at=now - timedelta(minutes=1), tipping_point=1, max_quantity=2, per_user_limit=2)
    deal = deal_publish(deal_id=deal_create(merchant=merchant, data=data_).id, by=merchant)
    fund(shopper)
    order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    assert deals_sweep()["tipped"] == 1
    last = order_place(deal_id=deal.id, buyer=shopper, quantity=1)  # paid at once; takes the last unit
    assert last.state == OrderState.CAPTURED
    assert Deal.objects.get(id=deal.id).state == DealState.TIPPED
    deals_sweep()
    assert Deal.objects.get(id=deal.id).state == DealState.SOLD_OUT


def test_flash_sale_releases_batches_one_per_user(merchant, fund):
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=data(
            starts_at=now - timedelta(minutes=1),
            per_user_limit=1,
            flash_batches=((now - timedelta(seconds=1), 2), (now + timedelta(hours=1), 2)),
        ),
    )
    deal = deal_publish(deal_id=deal.id, by=merchant)
    assert deal.released == 2
    people = [make_user(f"fs{i}") for i in range(4)]
    for person in people:
        fund(person)
    order_place(deal_id=deal.id, buyer=people[0], quantity=1)
    with pytest.raises(LimitReached):
        order_place(deal_id=deal.id, buyer=people[0], quantity=1)
    order_place(deal_id=deal.id, buyer=people[1], quantity=1)
    with pytest.raises(SoldOut):
        order_place(deal_id=deal.id, buyer=people[2], quantity=1)
    deals_sweep()
    assert Deal.objects.get(id=deal.id).released == 2  # the second batch is not due yet
    FlashBatch.objects.filter(deal=deal, released_at__isnull=True).update(release_at=timezone.now())
    deals_sweep()
    assert Deal.objects.get(id=deal.id).released == 4
    order_place(deal_id=deal.id, buyer=people[2], quantity=1)


def test_create_validation_and_ownership(merchant, shopper):
    with pytest.raises(ValidationFailed) as bad:
        deal_create(merchant=merchant, data=data(deal_price=40000, tipping_point=9))
    assert bad.value.details["problems"] == [
        "deal_price must be above 0 and at most list_price",
        "tipping_point must be between 1 and max_quantity",
    ]
    deal = deal_create(merchant=merchant, data=data())
    rival = make_user("rival", merchant=True)
    with pytest.raises(NotYourDeal):
        deal_publish(deal_id=deal.id, by=rival)
    assert Deal.objects.get(id=deal.id).state == DealState.DRAFT


def test_pricing_is_exact():
    assert fee_per_unit(unit_price=9900, fee_bps=500) == 495
    assert capture_split(unit_price=9999, quantity=3, fee_bps=500) == (3 * 9999 - 3 * 499, 3 * 499)
    assert discount_percent(list_price=20000, deal_price=9900) == 50


def test_publish_posts_the_deal_card_and_orders_reach_the_outbox(merchant, shopper, fund):
    from weituan.microblog.models import Post
    from weituan.tracking.models import OutboxEvent

    deal = deal_create(merchant=merchant, data=data(starts_at=timezone.now() - timedelta(minutes=1)))
    deal = deal_publish(deal_id=deal.id, by=merchant)
    assert deal.post_id is not None
    post = Post.objects.get(id=deal.post_id)
    assert (post.author_id, post.deal_id) == (merchant.id, deal.id)
    assert "¥99.00" in post.text
    fund(shopper)
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)
    deal_tip_check(deal_id=deal.id)
    events = {row.event: row.payload for row in OutboxEvent.objects.filter(user_id=shopper.id)}
    assert events["order_placed"]["order_id"] == str(order.id)
    assert events["order_paid"]["revenue"] == 9900


@pytest.mark.parametrize(
    ("locale", "default_language", "announced"),
    [
        ("", "", "【团购】双人火锅套餐 ¥99.00（原价 ¥200.00），3人成团"),
        ("en", "", "[Group buy] 双人火锅套餐 ¥99.00 (was ¥200.00), on at 3 buyers"),
        ("zh-hans", "en", "[Group buy] 双人火锅套餐 ¥99.00 (was ¥200.00), on at 3 buyers"),
        ("en", "ja", "【团购】双人火锅套餐 ¥99.00（原价 ¥200.00），3人成团"),  # a language the site lacks
    ],
)
def test_the_deal_post_is_written_in_the_language_its_merchant_posts_in(
    merchant, locale, default_language, announced
):
    from weituan.deals.tests.conftest import live_deal
    from weituan.microblog.models import Post

    merchant.locale, merchant.default_language = locale, default_language
    merchant.save(update_fields=["locale", "default_language"])
    deal = live_deal(merchant)
    assert Post.objects.get(id=deal.post_id).text.startswith(announced + " http")
