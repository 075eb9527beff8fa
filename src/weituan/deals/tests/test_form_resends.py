"""The merchant's and the team leader's one-tap forms sent twice (a double tap, a form sent again after
its answer was lost): the redemption, the publication and the team merge each happen once, and the
second send shows the same success as the first, never "already done by you"."""

import re
from typing import Any

import pytest
from django.test import Client

from weituan.deals.models import Deal, DealState, Order, Team, TeamState, Voucher, VoucherState, WriteKey
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.tests.test_deal_announcement import Posting, draft
from weituan.deals.tests.test_lock_order import _buyer
from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db


def _browser(user: Any) -> Client:
    browser = Client(HTTP_ACCEPT_LANGUAGE="en")
    browser.force_login(user)
    return browser


def _token(page: str, action: str | None = None) -> str:
    """The one-time token of the page's form (the one posting to `action`, when given)."""
    form = page if action is None else page[page.index(f'action="{action}"') :]
    found = re.search(r'name="form_token" value="([^"]+)"', form)
    assert found is not None, page
    return found.group(1)


def _messages(page: str) -> list[str]:
    found = re.search(r'<ul class="messages" id="messages">(.*?)</ul>', page, re.S)
    return re.findall(r"<li[^>]*>(.*?)</li>", found.group(1)) if found else []


def test_a_redemption_sent_twice_shows_its_success_twice(merchant: Any, make_live_deal: Any) -> None:
    deal = make_live_deal(tipping_point=1)
    order_place(deal_id=deal.id, buyer=_buyer("alice"), quantity=1)
    deal_tip_check(deal_id=deal.id)
    voucher = Voucher.objects.get(deal=deal)
    seller = _browser(merchant)
    page = seller.get("/merchant/redeem")
    assert "no-store" in page["Cache-Control"]
    token = _token(page.content.decode())

    answers = [
        seller.post("/merchant/redeem", {"code": voucher.code, "form_token": token}).content.decode()
        for _ in range(2)
    ]

    for answer in answers:
        assert _messages(answer) == ["Redeemed: 双人火锅套餐"]
        assert '<p class="ok">✔ 双人火锅套餐 · @alice</p>' in answer
        # The page drawn again carries a new token, for the next customer's voucher.
        assert _token(answer) != token
    voucher.refresh_from_db()
    assert (voucher.state, voucher.redeemed_by_id) == (VoucherState.REDEEMED, merchant.id)
    assert list(WriteKey.objects.values_list("sender_id", "key", "request", "voucher_id")) == [
        (merchant.id, token, f"redeem:{voucher.code}", voucher.id)
    ]
    # The same code typed again in a new page is a second redemption, refused as one.
    fresh = _token(answers[1])
    again = seller.post("/merchant/redeem", {"code": voucher.code, "form_token": fresh}).content.decode()
    (refusal,) = _messages(again)
    assert refusal.startswith("Already redeemed on ") and refusal.endswith(f" by @{merchant.username}")
    assert WriteKey.objects.count() == 1


def test_a_token_sent_with_another_code_redeems_nothing(merchant: Any, make_live_deal: Any) -> None:
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order_place(deal_id=deal.id, buyer=_buyer("alice"), quantity=2)
    deal_tip_check(deal_id=deal.id)
    first, second = Voucher.objects.filter(deal=deal).order_by("id")
    seller = _browser(merchant)
    token = _token(seller.get("/merchant/redeem").content.decode())
    seller.post("/merchant/redeem", {"code": first.code, "form_token": token})

    answer = seller.post("/merchant/redeem", {"code": second.code, "form_token": token}).content.decode()

    assert _messages(answer) == ["This form was already sent. Reload the page and try again."]
    assert Voucher.objects.get(id=second.id).state == VoucherState.VALID


def test_a_publication_sent_twice_publishes_and_announces_once(merchant: Any) -> None:
    deal = draft(merchant)
    seller = _browser(merchant)
    page = seller.get(f"/merchant/deals/{deal.id}/")
    assert "no-store" in page["Cache-Control"]
    action = f"/merchant/deals/{deal.id}/publish"
    token = _token(page.content.decode(), action)

    for _ in range(2):
        answer = seller.post(action, {"form_token": token})
        assert (answer.status_code, answer["Location"]) == (302, f"/merchant/deals/{deal.id}/")
        shown = seller.get(answer["Location"]).content.decode()
        assert _messages(shown) == ["Published: your deal card is on your micro-blog."]

    published = Deal.objects.get(id=deal.id)
    assert published.state == DealState.LIVE
    assert list(Post.objects.filter(deal_id=deal.id).values_list("id", flat=True)) == [published.post_id]
    # Without the token, the second tap is a second publication, refused as one.
    seller.post(action)
    assert _messages(seller.get(f"/merchant/deals/{deal.id}/").content.decode()) == [
        "This deal is already published."
    ]


def test_a_merge_sent_twice_shows_the_team_it_joined_twice(make_live_deal: Any) -> None:
    deal = make_live_deal(team_price=5_000, team_size=3, deal_price=8_000, tipping_point=1, max_quantity=20)
    leader, host, guest = _buyer("leader"), _buyer("host"), _buyer("guest")
    mine = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start").team_id
    into = order_place(deal_id=deal.id, buyer=host, quantity=1, team="start").team_id
    assert mine is not None and into is not None
    order_place(deal_id=deal.id, buyer=guest, quantity=1, team=into)
    browser = _browser(leader)
    action = f"/teams/{mine}/merge"
    token = _token(browser.get(f"/teams/{mine}/").content.decode(), action)

    for _ in range(2):
        answer = browser.post(action, {"into": str(into), "form_token": token})
        assert (answer.status_code, answer["Location"]) == (302, f"/teams/{into}/")
        shown = browser.get(answer["Location"]).content.decode()
        assert _messages(shown) == ["Your team has joined @host&#x27;s team."]

    merged, joined = Team.objects.get(id=mine), Team.objects.get(id=into)
    assert (merged.state, merged.merged_into_id) == (TeamState.MERGED, into)
    assert (joined.state, joined.members) == (TeamState.FILLED, 3)
    assert Order.objects.filter(team_id=into).count() == 3
    # Without the token, the second tap is a second merge, refused as one.
    browser.post(action, {"into": str(into)})
    assert _messages(browser.get(f"/teams/{mine}/").content.decode()) == ["Both teams must still be open."]


def test_the_publish_page_says_when_the_card_is_still_to_come(merchant: Any, monkeypatch: Any) -> None:
    posting = Posting(monkeypatch)
    posting.refusing = True
    deal = draft(merchant)
    seller = _browser(merchant)
    action = f"/merchant/deals/{deal.id}/publish"
    token = _token(seller.get(f"/merchant/deals/{deal.id}/").content.decode(), action)

    seller.post(action, {"form_token": token})
    assert _messages(seller.get(f"/merchant/deals/{deal.id}/").content.decode()) == [
        "Published. Your deal card will be on your micro-blog shortly."
    ]
    posting.refusing = False
    # The same form sent again finds the deal published and makes the post the first send could not.
    seller.post(action, {"form_token": token})
    assert _messages(seller.get(f"/merchant/deals/{deal.id}/").content.decode()) == [
        "Published: your deal card is on your micro-blog."
    ]
    assert Post.objects.filter(deal_id=deal.id).count() == 1
