"""The share control on posts: made on request, one link per sharer and hop, leading to the deal or the post."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from weituan.core.testing import make_user
from weituan.deals.services.deals import DealInput, deal_create, deal_publish
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create
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
def test_any_post_can_be_shared_and_its_link_leads_to_the_post(merchant: Any, shopper: Any) -> None:
    plain = post_create(author=merchant, text="今天店休")
    page = _client(shopper).get(f"/@{merchant.username}").content.decode()
    assert f'hx-get="/p/{plain.id}/share"' in page and f'id="share-slot-{plain.id}"' in page
    answer = _client(shopper).get(f"/p/{plain.id}/share", headers=HTMX)
    assert answer.status_code == 200
    link = ShortLink.objects.get()
    assert (link.sharer_id, link.post_id, link.hop_depth, link.deal_id, link.target_url) == (
        shopper.id,
        plain.id,
        0,
        None,
        f"http://testserver/p/{plain.id}",
    )
    assert f'value="http://testserver/s/{link.code}"' in answer.content.decode()
    full = _client(shopper).get(f"/p/{plain.id}/share")
    assert f'href="/p/{plain.id}"' in full.content.decode()


@pytest.mark.django_db
def test_anonymous_viewers_and_posts_that_cannot_be_shared_get_no_link(
    merchant: Any, shopper: Any, outsider: Any
) -> None:
    _, post_id = _deal_post(merchant)
    private = post_create(author=merchant, text="粉丝专享", visibility="private")
    anonymous = Client().get(f"/p/{post_id}/share")
    assert anonymous.status_code == 302 and "/accounts/login" in anonymous["Location"]
    assert Client().get(f"/@{merchant.username}").content.decode().count("/share") == 0
    assert _client(shopper).get("/p/999999999/share", headers=HTMX).status_code == 404
    assert _client(shopper).get(f"/p/{private.id}/share", headers=HTMX).status_code == 404
    comment = comment_create(author=shopper, post_id=post_id, text="好")
    assert _client(shopper).get(f"/p/{comment.id}/share", headers=HTMX).status_code == 404
    # Someone else's followers-only post offers no share control, even to a follower.
    follow_create(follower=outsider, followee_id=merchant.pk)
    follower_page = _client(outsider).get(f"/@{merchant.username}").content.decode()
    assert f"/p/{private.id}/share" not in follower_page and f"/p/{post_id}/share" in follower_page
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


@pytest.mark.django_db
def test_a_deal_card_clicked_in_a_repost_is_credited_to_that_hop(merchant: Any, shopper: Any) -> None:
    deal, post_id = _deal_post(merchant)
    hop1 = repost_create(reposter=shopper, post_id=post_id, comment="拼一个")
    reader = make_user("bob")
    follow_create(follower=reader, followee_id=shopper.pk)
    browser = _client(reader)
    home = browser.get("/").content.decode()
    # Drawing the card makes no link: the card leads through the repost.
    assert f'href="/p/{hop1.id}/deal"' in home and f"/deals/{deal.id}/card?via={hop1.id}" in home
    assert not ShortLink.objects.exists()
    card = browser.get(f"/deals/{deal.id}/card?via={hop1.id}").content.decode()
    assert f'href="/p/{hop1.id}/deal"' in card  # the card's refresh keeps leading through the repost
    click = browser.get(f"/p/{hop1.id}/deal")
    link = ShortLink.objects.get()
    assert (link.sharer_id, link.post_id, link.hop_depth, link.deal_id) == (shopper.id, hop1.id, 1, deal.id)
    assert click.status_code == 302 and click["Location"] == f"/s/{link.code}"
    landing = browser.get(click["Location"])
    assert landing.status_code == 302 and f"/deals/{deal.id}/?wt_s={link.code}" in landing["Location"]
    # The same click again goes through the same link; the original's own card through the merchant's.
    assert browser.get(f"/p/{hop1.id}/deal")["Location"] == f"/s/{link.code}"
    browser.get(f"/p/{post_id}/deal")
    assert ShortLink.objects.get(post_id=post_id).sharer_id == merchant.id
    assert Client().get(f"/p/{hop1.id}/deal").status_code == 302  # a public post, for anyone


@pytest.mark.django_db
def test_a_post_without_a_deal_or_out_of_sight_has_no_deal_click(merchant: Any, shopper: Any) -> None:
    plain = post_create(author=shopper, text="今天吃什么")
    hidden = post_create(author=shopper, text="只给粉丝看", visibility="private")
    stranger = _client(make_user("bob"))
    assert stranger.get(f"/p/{plain.id}/deal").status_code == 404
    assert stranger.get(f"/p/{hidden.id}/deal").status_code == 404
    assert stranger.get("/p/999999/deal").status_code == 404
    assert not ShortLink.objects.exists()
