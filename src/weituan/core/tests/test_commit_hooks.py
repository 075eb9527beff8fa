"""A change that committed is answered as done even when enqueueing its tasks after the commit fails."""

from typing import Any

import pytest
from django.db import OperationalError
from django.tasks.backends.base import BaseTaskBackend

from weituan.deals.models import Order
from weituan.deals.services.orders import order_place
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.microblog.models import Post
from weituan.microblog.services.posts import post_create

pytestmark = pytest.mark.django_db(transaction=True)  # real commits, so the hooks run as in production


class UnreachableQueue(BaseTaskBackend):
    """A task queue whose database connection was ended just after the caller's commit."""

    supports_defer = True

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        raise OperationalError("terminating connection due to administrator command")


def test_a_post_and_an_order_whose_tasks_could_not_be_enqueued_are_answered_as_made(
    settings: Any, shopper: Any, merchant: Any
) -> None:
    deal = live_deal(merchant, max_quantity=5, per_user_limit=1, tipping_point=1)
    wallet_top_up(user=shopper, amount=100_000)
    settings.TASKS = {"default": {"BACKEND": f"{__name__}.UnreachableQueue"}}

    post = post_create(author=shopper, text="committed, whatever the queue says")
    order = order_place(deal_id=deal.id, buyer=shopper, quantity=1)

    assert Post.objects.get(id=post.id).text == "committed, whatever the queue says"
    assert Order.objects.get(id=order.id).buyer_id == shopper.id
