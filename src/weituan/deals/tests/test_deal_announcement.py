"""A published deal is announced on the merchant's micro-blog exactly once: a post refused (a rate limit)
or lost with its process is made by the deal sweep, and the announcement after publishing, retried
publishes and sweeps racing one another never make a second one."""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from weituan.core.errors import RateLimited
from weituan.deals.integrations import deal_card_post_create
from weituan.deals.models import Deal, DealState
from weituan.deals.services.deals import deal_end, deal_publish, deal_tip_check, deals_sweep
from weituan.deals.services.orders import order_place
from weituan.deals.tests.conftest import draft_deal
from weituan.deals.tests.test_lock_order import _all_at_once, _buyer
from weituan.microblog.models import Post
from weituan.microblog.services import posts


class Posting:
    """The micro-blog's post_create as the deals see it, refusing with a rate limit while `refusing`,
    and taking `pause` seconds before writing (a slow post, to widen any race)."""

    def __init__(self, monkeypatch: Any) -> None:
        self.real = posts.post_create
        self.refusing = False
        self.pause = 0.0
        self.refused = 0
        monkeypatch.setattr(posts, "post_create", self)

    def __call__(self, **kwargs: Any) -> Any:
        if self.refusing:
            self.refused += 1
            raise RateLimited("Too many posts; try again in 30 s", limit=1, reset_at=0, retry_after=30)
        if self.pause:
            time.sleep(self.pause)
        return self.real(**kwargs)


@pytest.fixture
def posting(monkeypatch: Any) -> Posting:
    return Posting(monkeypatch)


def draft(merchant: Any, *, starts_in: timedelta = -timedelta(minutes=1), **overrides: Any) -> Deal:
    return draft_deal(merchant, starts_at=timezone.now() + starts_in, **overrides)


def published_unannounced(merchant: Any, posting: Posting, **overrides: Any) -> Deal:
    """A deal published while the merchant's posts are refused: on sale, without its post."""
    deal = draft(merchant, **overrides)
    posting.refusing = True
    try:
        return deal_publish(deal_id=deal.id, by=merchant)
    finally:
        posting.refusing = False


def cards_of(deal: Deal) -> list[Post]:
    return list(Post.objects.filter(deal_id=deal.id))


@pytest.mark.django_db
def test_a_deal_whose_post_was_refused_is_announced_once_by_the_sweep(
    merchant: Any, posting: Posting
) -> None:
    deal = published_unannounced(merchant, posting)
    assert (posting.refused, deal.state, deal.post_id, cards_of(deal)) == (1, DealState.LIVE, None, [])

    counts = deals_sweep()

    assert counts["announced"] == 1
    (card,) = cards_of(deal)
    assert Deal.objects.get(id=deal.id).post_id == card.id
    assert card.author_id == merchant.id
    url = f"{settings.SITE_URL}/deals/{deal.id}/"
    assert card.text == f"【团购】双人火锅套餐 ¥99.00（原价 ¥200.00），3人成团 {url}"
    assert deals_sweep()["announced"] == 0
    assert cards_of(deal) == [card]


@pytest.mark.django_db
def test_a_scheduled_deal_is_announced_by_the_sweep_before_it_starts(merchant: Any, posting: Posting) -> None:
    deal = published_unannounced(merchant, posting, starts_in=timedelta(hours=3))
    assert deal.state == DealState.SCHEDULED

    assert deals_sweep()["announced"] == 1
    assert len(cards_of(deal)) == 1
    assert Deal.objects.get(id=deal.id).state == DealState.SCHEDULED


@pytest.mark.django_db
def test_a_post_still_refused_is_tried_again_by_a_later_sweep(merchant: Any, posting: Posting) -> None:
    deal = published_unannounced(merchant, posting)
    posting.refusing = True
    assert deals_sweep()["announced"] == 0
    assert (posting.refused, cards_of(deal)) == (2, [])

    posting.refusing = False
    assert deals_sweep()["announced"] == 1
    assert len(cards_of(deal)) == 1


@pytest.mark.django_db
def test_a_retried_publish_announces_the_deal_its_first_try_could_not(
    merchant: Any, posting: Posting
) -> None:
    deal = draft(merchant)
    posting.refusing = True
    first = deal_publish(deal_id=deal.id, by=merchant, client_key="publish-1")
    posting.refusing = False
    assert (first.post_id, cards_of(deal)) == (None, [])

    again = deal_publish(deal_id=deal.id, by=merchant, client_key="publish-1")

    (card,) = cards_of(deal)
    assert again.post_id == card.id
    assert deal_publish(deal_id=deal.id, by=merchant, client_key="publish-1").post_id == card.id
    assert deals_sweep()["announced"] == 0
    assert cards_of(deal) == [card]


@pytest.mark.django_db
def test_an_announced_deal_is_not_announced_again(merchant: Any, posting: Posting) -> None:
    deal = deal_publish(deal_id=draft(merchant).id, by=merchant)
    (card,) = cards_of(deal)

    assert deal_card_post_create(deal=Deal.objects.get(id=deal.id)) == card.id
    assert deals_sweep()["announced"] == 0
    assert cards_of(deal) == [card]


def _bought(deal: Deal, name: str) -> None:
    """One unit bought by a new buyer, and the tip check its order enqueues run."""
    order_place(deal_id=deal.id, buyer=_buyer(name), quantity=1)
    deal_tip_check(deal_id=deal.id)


@pytest.mark.django_db
def test_ended_deals_are_never_announced_by_the_sweep(merchant: Any, posting: Posting) -> None:
    sold_out = published_unannounced(merchant, posting, max_quantity=1, tipping_point=1, per_user_limit=1)
    _bought(sold_out, "first")
    ends = timezone.now() + timedelta(hours=1)
    to_close = published_unannounced(merchant, posting, tipping_point=1, ends_at=ends)
    _bought(to_close, "second")
    to_fail = published_unannounced(merchant, posting, tipping_point=2, ends_at=ends)
    closed_before = published_unannounced(merchant, posting, tipping_point=1, ends_at=ends)
    _bought(closed_before, "third")
    failed_before = published_unannounced(merchant, posting, tipping_point=2, ends_at=ends)
    for deal_id in (closed_before.id, failed_before.id):  # ended by their own task, before any sweep
        deal_end(deal_id=deal_id, now=ends)
    assert Deal.objects.get(id=sold_out.id).state == DealState.SOLD_OUT
    assert Deal.objects.get(id=to_close.id).state == DealState.TIPPED

    # This sweep ends the other two, and announces none of the five.
    counts = deals_sweep(now=ends + timedelta(seconds=1))

    assert counts["ended"] == 2
    assert counts["announced"] == 0
    states = dict(Deal.objects.filter(merchant=merchant).order_by("id").values_list("id", "state").iterator())
    assert states == {
        sold_out.id: DealState.SOLD_OUT,
        to_close.id: DealState.CLOSED,
        to_fail.id: DealState.FAILED,
        closed_before.id: DealState.CLOSED,
        failed_before.id: DealState.FAILED,
    }
    assert Post.objects.filter(author=merchant).count() == 0
    assert Deal.objects.filter(merchant=merchant, post_id__isnull=False).count() == 0


@pytest.fixture
def no_tasks(settings: Any) -> None:
    # The racers' posts' fan-out is not what is raced here.
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_sweeps_and_announcements_racing_make_one_post(
    merchant: Any, posting: Posting, no_tasks: Any
) -> None:
    deal = published_unannounced(merchant, posting)
    # Every racer reads the deal unannounced, then takes its time over the post.
    posting.pause = 0.3

    def announce() -> None:
        deal_card_post_create(deal=Deal.objects.select_related("merchant").get(id=deal.id))

    outcomes = _all_at_once([deals_sweep if i % 2 else announce for i in range(8)])

    assert outcomes == ["done"] * 8
    (card,) = cards_of(deal)
    assert Deal.objects.get(id=deal.id).post_id == card.id
