"""Invite links end to end: a signed-out friend follows a shopper's link, signs up, and their first paid
order credits the shopper once, within the window and under the cap."""

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from weituan.accounts.models import User
from weituan.core.testing import make_user
from weituan.deals.models import Order, OrderState, Posting, Referral
from weituan.deals.queries import wallet_of
from weituan.deals.services.deals import deal_tip_check
from weituan.deals.services.wallet import wallet_top_up
from weituan.tracking.models import ShortLink

pytestmark = pytest.mark.django_db

PASSWORD = "a long passphrase"


def _logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _invite_url(inviter: Any) -> str:
    """The invite link the inviter copies from their wallet page."""
    page = _logged_in(inviter).get("/me/wallet/").content.decode()
    found = re.search(r'id="invite-url"[^>]*value="([^"]+)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def _signs_up_through(url: str, username: str) -> tuple[Client, Any]:
    """A signed-out visitor opens the invite link and signs up from where it leads."""
    browser = Client()
    short = browser.get(url)
    assert short.status_code == 302 and "/invite/" in short["Location"]
    invite = browser.get(short["Location"])
    assert invite.status_code == 302
    signup_page = invite["Location"]
    assert signup_page.startswith("/accounts/signup")
    assert browser.get(signup_page).status_code == 200
    joined = browser.post(
        signup_page,
        {
            "username": username,
            "email": f"{username}@example.test",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "next": "/deals/",
        },
    )
    assert joined.status_code == 302 and joined["Location"] == "/deals/"
    return browser, User.objects.get(username=username)


def _buys_and_pays(browser: Client, buyer: Any, deal: Any, token: str) -> Order:
    wallet_top_up(user=buyer, amount=50_000)
    response = browser.post(
        f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "9900", "checkout_token": token}
    )
    assert response.status_code == 302
    order = Order.objects.filter(buyer=buyer).order_by("-id").first()
    assert order is not None
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    return order


@override_settings(DEALS_REFERRAL_CREDIT=300, DEALS_REFERRAL_CAP=5)
def test_a_friend_who_signs_up_through_the_invite_link_credits_the_inviter_once(
    shopper: Any, make_live_deal: Any
) -> None:
    deal = make_live_deal(tipping_point=1)
    url = _invite_url(shopper)
    link = ShortLink.objects.get(sharer_id=shopper.id, campaign="invite")
    assert url == f"http://testserver/s/{link.code}"
    browser, friend = _signs_up_through(url, "dazhuang")
    referral = Referral.objects.get(invitee=friend)
    assert (referral.inviter_id, referral.credited_at) == (shopper.id, None)
    assert browser.session.get("invited_by") is None  # the invite is used once
    first = _buys_and_pays(browser, friend, deal, "t-1")
    assert wallet_of(user=shopper).available == 300
    # A second paid order, and the tip check run again, credit nothing more.
    _buys_and_pays(browser, friend, deal, "t-2")
    deal_tip_check(deal_id=deal.id)
    assert wallet_of(user=shopper).available == 300
    referral.refresh_from_db()
    assert (referral.credit, referral.currency) == (300, "CNY")
    assert list(Posting.objects.filter(kind="referral").values_list("key", "order_id")) == [
        (f"referral:{referral.id}", first.id)
    ]
    page = _logged_in(shopper).get("/me/wallet/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Friends invited: 1 · credited: 1 · earned: ¥3.00" in page


@pytest.mark.parametrize(("hours_since_invite", "credited"), [(71, 300), (73, 0)])
@override_settings(DEALS_REFERRAL_CREDIT=300, DEALS_REFERRAL_HOURS=72)
def test_the_first_order_must_be_paid_within_the_window(
    shopper: Any, make_live_deal: Any, hours_since_invite: int, credited: int
) -> None:
    deal = make_live_deal(tipping_point=2)
    browser, friend = _signs_up_through(_invite_url(shopper), "erniu")
    wallet_top_up(user=friend, amount=50_000)
    browser.post(f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "9900"})
    assert Order.objects.get(buyer=friend).state == OrderState.AUTHORIZED
    # The deal tips (its hold is captured) this many hours after the friend joined through the link.
    Referral.objects.filter(invitee=friend).update(
        invited_at=timezone.now() - timedelta(hours=hours_since_invite)
    )
    other = make_user("other_buyer")
    wallet_top_up(user=other, amount=50_000)
    _logged_in(other).post(f"/deals/{deal.id}/checkout", {"quantity": "1", "unit_price": "9900"})
    deal_tip_check(deal_id=deal.id)
    assert Order.objects.get(buyer=friend).state == OrderState.CAPTURED
    assert wallet_of(user=shopper).available == credited
    assert Referral.objects.get(invitee=friend).credit == credited


@override_settings(DEALS_REFERRAL_CREDIT=300, DEALS_REFERRAL_CAP=1)
def test_friends_past_the_cap_earn_nothing(shopper: Any, make_live_deal: Any) -> None:
    deal = make_live_deal(tipping_point=1)
    url = _invite_url(shopper)
    first_browser, first = _signs_up_through(url, "first_friend")
    second_browser, second = _signs_up_through(url, "second_friend")
    assert Referral.objects.filter(inviter=shopper).count() == 2
    _buys_and_pays(first_browser, first, deal, "t-1")
    _buys_and_pays(second_browser, second, deal, "t-2")
    assert wallet_of(user=shopper).available == 300
    assert list(Referral.objects.filter(credited_at__isnull=False).values_list("invitee_id", flat=True)) == [
        first.id
    ]
    page = _logged_in(shopper).get("/me/wallet/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Friends invited: 2 · credited: 1 · earned: ¥3.00" in page


def test_nobody_invites_themselves(shopper: Any, make_live_deal: Any) -> None:
    url = _invite_url(shopper)
    own = _logged_in(shopper)
    assert own.get(url).status_code == 302
    assert own.get("/invite/alice").status_code == 302
    # Signed out, then logging in to the inviter's own account.
    browser = Client()
    browser.get("/invite/alice")
    assert browser.session["invited_by"] == shopper.id
    assert (
        browser.post(
            "/accounts/login", {"username": "alice", "password": "correct horse battery"}
        ).status_code
        == 302
    )
    assert Referral.objects.count() == 0
    assert "invited_by" not in browser.session


def test_an_existing_shopper_logging_in_through_an_invite_is_no_new_customer(
    shopper: Any, make_live_deal: Any
) -> None:
    deal = make_live_deal(tipping_point=1)
    buyer = make_user("old_buyer")
    _buys_and_pays(_logged_in(buyer), buyer, deal, "t-old")
    newcomer = make_user("never_ordered")
    for person in (buyer, newcomer):
        browser = Client()
        browser.get(_invite_url(shopper))
        browser.get(f"/invite/{shopper.username}")
        response = browser.post(
            "/accounts/login", {"username": person.username, "password": "correct horse battery"}
        )
        assert response.status_code == 302
    # The account that has bought before is not referred; one that never ordered is a new customer.
    assert list(Referral.objects.values_list("invitee_id", flat=True)) == [newcomer.id]
    # Following the link while signed in follows the same rule.
    _logged_in(buyer).get(f"/invite/{shopper.username}")
    assert Referral.objects.count() == 1


def test_an_unknown_inviter_is_404(client: Client) -> None:
    assert client.get("/invite/nobody_here").status_code == 404
    assert "invited_by" not in client.session


def test_the_wallet_page_shows_the_invite_link_in_chinese(shopper: Any) -> None:
    browser = _logged_in(shopper)
    page = browser.get("/me/wallet/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    link = ShortLink.objects.get(sharer_id=shopper.id, campaign="invite")
    assert "邀请好友" in page and "你的邀请链接" in page
    assert f'value="http://testserver/s/{link.code}"' in page
    assert "72 小时内付款完成首单" in page
    # The same link on every visit, leading to the inviter's invite page with the share's code.
    browser.get("/me/wallet/")
    assert ShortLink.objects.filter(sharer_id=shopper.id).count() == 1
    landing = Client().get(f"/s/{link.code}")
    assert landing["Location"] == f"http://testserver/invite/alice?wt_s={link.code}"
    # The menu leads to the page.
    assert 'href="/me/wallet/"' in browser.get("/deals/").content.decode()


def _app_token(client: Client) -> str:
    app = client.post(
        "/api/v1/apps",
        {"client_name": "Reg", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write"},
    ).json()
    return str(
        client.post(
            "/oauth/token",
            {
                "grant_type": "client_credentials",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "scope": "read write",
            },
        ).json()["access_token"]
    )


@override_settings(DEALS_REFERRAL_CREDIT=300)
def test_a_mastodon_app_registers_with_the_invite_code(shopper: Any, make_live_deal: Any) -> None:
    deal = make_live_deal(tipping_point=1)
    client = Client()
    headers = {"authorization": f"Bearer {_app_token(client)}"}

    def register(username: str, invite_code: str) -> Any:
        return client.post(
            "/api/v1/accounts",
            {
                "username": username,
                "email": f"{username}@example.test",
                "password": PASSWORD,
                "invite_code": invite_code,
                "agreement": "1",
            },
            headers=headers,
        )

    # The code is the last part of the invite link, as in a Mastodon invite link.
    assert register("app_friend", "Alice").status_code == 200
    # An unknown code does not stop the sign-up; it invites nobody.
    assert register("app_other", "no_such_user").status_code == 200
    friend = User.objects.get(username="app_friend")
    assert list(Referral.objects.values_list("inviter_id", "invitee_id")) == [(shopper.id, friend.id)]
    wallet_top_up(user=friend, amount=50_000)
    _buys_and_pays(_logged_in(friend), friend, deal, "t-app")
    assert wallet_of(user=shopper).available == 300
    assert client.get("/api/v1/instance").json()["invites_enabled"] is True
