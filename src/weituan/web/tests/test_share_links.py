"""The share control on deal posts: shown only where a deal is, made on request, one link per sharer and hop."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.services.deals import DealInput, deal_create, deal_publish
from weituan.microblog.services.posts import post_create, repost_create
from weituan.tracking.models import ShortLink

HTMX = {"HX-Request": "true"}


def _deal_post(merchant: Any) -> tuple[Any, int]:
    now = timezone.now()
    deal = deal_create(
        merchant=merchant,
        data=DealInput(
            title="鲜肉月饼",
            list_price=3000,
            deal_price=1900,
            max_quantity=10,
            tipping_point=2,
            per_user_limit=1,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
        ),
    )
    deal = deal_publish(deal_id=deal.id, by=merchant)
    assert deal.post_id is not None
    return deal, deal.post_id


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_each_repost_hop_gets_its_own_link_made_only_on_request(merchant: Any, shopper: Any) -> None:
    deal, post_id = _deal_post(merchant)
    hop1 = repost_create(reposter=shopper, post_id=post_id, comment="好吃")
    friend = make_user("bob")
    hop2 = repost_create(reposter=friend, post_id=hop1.id)
    client = _client(friend)

    page = client.get(f"/@{shopper.username}")
    assert page.status_code == 200
    assert f'hx-get="/p/{hop1.id}/share"' in page.content.decode()
    assert ShortLink.objects.count() == 0  # drawing the cards wrote nothing

    first = client.get(f"/p/{hop2.id}/share", headers=HTMX)
    again = client.get(f"/p/{hop2.id}/share", headers=HTMX)
    shopper_link = _client(shopper).get(f"/p/{hop1.id}/share", headers=HTMX)
    assert (first.status_code, again.status_code, shopper_link.status_code) == (200, 200, 200)
    assert first["Cache-Control"] == "private, no-store"
    rows = list(ShortLink.objects.order_by("id").values_list("sharer_id", "post_id", "hop_depth", "deal_id"))
    assert rows == [(friend.id, hop2.id, 2, deal.id), (shopper.id, hop1.id, 1, deal.id)]
    friend_code, shopper_code = ShortLink.objects.order_by("id").values_list("code", flat=True)
    assert first.content == again.content
    assert f'value="http://testserver/s/{friend_code}"' in first.content.decode()
    assert f'value="http://testserver/s/{shopper_code}"' in shopper_link.content.decode()
    link = ShortLink.objects.get(code=friend_code)
    assert (link.channel, link.target_url) == ("microblog", f"http://testserver/deals/{deal.id}/")

    # Without htmx the same link comes on a page of its own.
    full = client.get(f"/p/{hop2.id}/share")
    assert full.status_code == 200
    assert "<html" in full.content.decode() and friend_code in full.content.decode()
    assert ShortLink.objects.count() == 2


@pytest.mark.django_db
def test_posts_without_a_deal_and_anonymous_viewers_get_no_link(merchant: Any, shopper: Any) -> None:
    plain = post_create(author=merchant, text="今天店休")
    page = _client(shopper).get(f"/@{merchant.username}")
    assert "/share" not in page.content.decode()
    assert _client(shopper).get(f"/p/{plain.id}/share", headers=HTMX).status_code == 404
    _, post_id = _deal_post(merchant)
    anonymous = Client().get(f"/p/{post_id}/share")
    assert anonymous.status_code == 302 and "/accounts/login" in anonymous["Location"]
    assert Client().get(f"/@{merchant.username}").content.decode().count("/share") == 0
    assert _client(shopper).get("/p/999999999/share", headers=HTMX).status_code == 404
    assert ShortLink.objects.count() == 0


@pytest.mark.django_db
def test_the_deal_page_remembers_the_share_it_was_opened_through(merchant: Any, shopper: Any) -> None:
    deal, _ = _deal_post(merchant)
    client = _client(shopper)
    assert client.get(f"/deals/{deal.id}/?wt_s=Ab3xYz9Q").status_code == 200
    assert client.session["deal_shares"] == {str(deal.id): "Ab3xYz9Q"}
    assert client.get(f"/deals/{deal.id}/?wt_s=<script>").status_code == 200
    assert client.get(f"/deals/{deal.id}/").status_code == 200
    assert client.session["deal_shares"] == {str(deal.id): "Ab3xYz9Q"}
