"""Refunds and voids of orders paid through a hosted provider (the fake provider on 127.0.0.1: a real HTTP
server, real sockets), by every path the product has: the buyer's refund in the window (API and orders
page), refund any time, unredeemed vouchers refunded on expiry, a team that does not fill and a deal
that fails. Each asks the provider once per order, under a key that a retry sends again; the ledger
moves as with the wallet; a provider that fails, is slow or is away leaves the order for a later
attempt (the sweep, the task) to finish once; one that refuses is a JSON error with a stable code."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connections
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from weituan.core.errors import Conflict
from weituan.core.testing import make_user
from weituan.deals import tasks
from weituan.deals.errors import RefundPending
from weituan.deals.models import (
    AccountKind,
    Deal,
    DealState,
    Entry,
    Order,
    OrderState,
    Posting,
    Refund,
    RefundState,
    Team,
    TeamState,
    Voucher,
    VoucherState,
)
from weituan.deals.pricing import capture_split
from weituan.deals.queries import ledger_report
from weituan.deals.services import ledger, refunds
from weituan.deals.services.deals import deal_tip_check, deals_sweep
from weituan.deals.services.gateways import HostedGateway, gateway_register
from weituan.deals.services.orders import order_place
from weituan.deals.services.refunds import order_refund
from weituan.deals.services.vouchers import voucher_redeem
from weituan.deals.tests.fake_provider import API_KEY, WEBHOOK_SECRET, closed_port_url

pytestmark = pytest.mark.django_db

PRICE = 9_900  # the deals' price (conftest.live_deal)
SHARE, FEE = capture_split(unit_price=PRICE, quantity=1, fee_bps=500)


def _gateway_at(url: str, *, timeout: float = 10) -> HostedGateway:
    """The `card` gateway reaching the provider at `url`, registered in place of the fixture's."""
    gateway = HostedGateway(
        name="card", base_url=url, api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, timeout=timeout
    )
    gateway_register(gateway)
    return gateway


def _paid_by_card(deal: Deal, buyer: Any, quantity: int = 1) -> Order:
    order = order_place(deal_id=deal.id, buyer=buyer, quantity=quantity, gateway="card")
    deal_tip_check(deal_id=deal.id)
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    return order


def _moves(order: Order) -> list[tuple[str, str, int]]:
    """What the order's postings moved: (posting kind, account kind, amount), the account the buyer's
    money comes from and returns to (a wallet, or the gateway's account of the provider's money) as
    `funding`."""
    rows = (
        Entry.objects.filter(posting__order=order)
        .values("posting__kind", "account__kind")
        .annotate(total=Sum("amount"))
    )
    funding = (AccountKind.WALLET, AccountKind.GATEWAY)
    return sorted(
        (row["posting__kind"], "funding" if row["account__kind"] in funding else row["account__kind"], row["total"])
        for row in rows
    )  # fmt: skip


def _balance(kind: str, *, owner: Any = None, name: str = "") -> int:
    return ledger.balance_of(
        ledger.account_get(kind=kind, currency="CNY", owner_id=owner.id if owner else None, name=name)
    )


def _effects(fake: Any, action: str) -> list[tuple[str, str]]:
    """The operations of that kind the provider carried out (once per key)."""
    return [(path, key) for path, key in fake.calls if path.endswith("/" + action)]


def test_a_refund_in_the_window_is_one_refund_of_the_order_at_the_provider(
    provider, api_as, shopper, outsider, merchant, make_live_deal, fund
):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    card = _paid_by_card(deal, shopper, quantity=2)
    fund(outsider)
    wallet = order_place(deal_id=deal.id, buyer=outsider, quantity=2)
    assert wallet.state == OrderState.CAPTURED
    codes = list(card.vouchers.values_list("code", flat=True))

    api = api_as(shopper)
    refunded = api.post(f"/api/v1/orders/{card.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert refunded.status_code == 200, refunded.content
    assert refunded.json()["state"] == "refunded"
    [(path, key, body)] = fake.refunds()
    assert (path, body) == (
        f"/authorizations/{card.payment_ref}/refund",
        {"amount": 2 * PRICE, "currency": "CNY"},
    )
    # The client's retry gets the first answer; the platform asking again sends the same key, and the
    # provider refunds that key once.
    again = api.post(f"/api/v1/orders/{card.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (again.status_code, again.json()) == (200, refunded.json())
    assert len(fake.refunds()) == 1
    gateway.refund(ref=card.payment_ref, amount=2 * PRICE, currency="CNY", key=key)
    assert [request[1] for request in fake.refunds()] == [key, key]
    assert _effects(fake, "refund") == [(path, key)]
    assert fake.holds[card.payment_ref]["refunded"] == 2 * PRICE

    # The ledger moves as for the wallet's order, the provider's money standing for the wallet.
    assert api_as(outsider).post(f"/api/v1/orders/{wallet.id}/refund").status_code == 200
    assert _moves(card) == _moves(wallet) == [
        ("authorize", "funding", -2 * PRICE), ("authorize", "held", 2 * PRICE),
        ("capture", "held", -2 * PRICE), ("capture", "merchant_payable", 2 * SHARE),
        ("capture", "platform_fee", 2 * FEE),
        ("refund", "funding", 2 * PRICE), ("refund", "merchant_payable", -2 * SHARE),
        ("refund", "platform_fee", -2 * FEE),
    ]  # fmt: skip
    assert Posting.objects.filter(order=card, kind="refund").count() == 2  # one per voucher
    assert _balance(AccountKind.MERCHANT_PAYABLE, owner=merchant) == 0
    assert _balance(AccountKind.PLATFORM_FEE, name="platform") == 0
    assert _balance(AccountKind.HELD, owner=shopper) == 0
    assert _balance(AccountKind.GATEWAY, name="card") == 0
    assert _balance(AccountKind.WALLET, owner=outsider) == 100_000
    assert ledger_report().ok

    # The vouchers are spent: the merchant cannot redeem them, and nothing more is refunded.
    for code in codes:
        refused = api_as(merchant).post(f"/api/v1/vouchers/{code}/redeem")
        assert (refused.status_code, refused.json()["code"]) == (409, "voucher_refunded")
    assert set(Voucher.objects.filter(order=card).values_list("state", flat=True)) == {VoucherState.REFUNDED}
    second = api.post(f"/api/v1/orders/{card.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-2")
    assert (second.status_code, second.json()["code"]) == (409, "refund_not_allowed")
    assert len(fake.refunds()) == 2


def test_refund_any_time_from_the_orders_page_and_none_after_the_window(
    provider, api_as, shopper, make_live_deal
):
    fake, _ = provider
    anytime = make_live_deal(tipping_point=1, refund_policy="anytime")
    order = _paid_by_card(anytime, shopper)
    Order.objects.filter(id=order.id).update(captured_at=timezone.now() - timedelta(days=400))
    browser = Client()
    browser.force_login(shopper)
    action = reverse("deals:order_action", args=[order.id, "refund"])
    assert f'action="{action}"' in browser.get(reverse("deals:my_orders")).content.decode()
    assert browser.post(action).status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    assert [(path, body) for path, _, body in fake.refunds()] == [
        (f"/authorizations/{order.payment_ref}/refund", {"amount": PRICE, "currency": "CNY"})
    ]

    windowed = make_live_deal(title="三日内可退", tipping_point=1, refund_window_days=3)
    late = _paid_by_card(windowed, shopper)
    Order.objects.filter(id=late.id).update(captured_at=timezone.now() - timedelta(days=4))
    refused = api_as(shopper).post(f"/api/v1/orders/{late.id}/refund")
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "The 3-day refund window has closed",
        "code": "refund_not_allowed",
        "reason": "window_closed",
        "refund_window_days": 3,
    }
    shown = browser.post(reverse("deals:order_action", args=[late.id, "refund"]), follow=True)
    assert "3 天的可退期已过。" in shown.content.decode()
    assert Order.objects.get(id=late.id).state == OrderState.CAPTURED
    assert len(fake.refunds()) == 1
    assert ledger_report().ok


def test_unredeemed_vouchers_are_refunded_at_the_provider_once_they_expire(
    provider, api_as, shopper, outsider, merchant, make_live_deal
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2, refund_policy="on_expiry", voucher_valid_days=30)
    mine = _paid_by_card(deal, shopper, quantity=2)
    theirs = _paid_by_card(deal, outsider)
    used = mine.vouchers.order_by("id").first()
    assert used is not None
    voucher_redeem(code=used.code, by=merchant)
    refused = api_as(shopper).post(f"/api/v1/orders/{mine.id}/refund")
    assert (refused.status_code, refused.json()["code"]) == (409, "refund_not_allowed")
    deals_sweep(now=timezone.now() + timedelta(days=29))
    assert fake.refunds() == []

    # The provider is down when they expire: the sweep goes on, the vouchers are out of use, no money moved.
    fake.outage = 500
    expired = timezone.now() + timedelta(days=31)
    assert deals_sweep(now=expired)["refunds_completed"] == 0
    assert len(fake.refunds()) == 2
    unused = Voucher.objects.filter(order__in=[mine, theirs]).exclude(id=used.id)
    assert set(unused.values_list("state", flat=True)) == {VoucherState.REFUNDING}
    for voucher in unused:
        with pytest.raises(Conflict) as redeemed:
            voucher_redeem(code=voucher.code, by=merchant)
        assert redeemed.value.code == "voucher_refunded"
    assert not Posting.objects.filter(kind="refund").exists()
    assert ledger_report().ok

    # A later sweep refunds each order once, for its unredeemed vouchers.
    fake.outage = None
    assert deals_sweep(now=expired + timedelta(hours=2))["refunds_completed"] == 2
    assert deals_sweep(now=expired + timedelta(days=1))["refunds_completed"] == 0
    refunds = [(path, body) for path, _, body in fake.refunds()]
    assert refunds[2:] == [
        (f"/authorizations/{mine.payment_ref}/refund", {"amount": PRICE, "currency": "CNY"}),
        (f"/authorizations/{theirs.payment_ref}/refund", {"amount": PRICE, "currency": "CNY"}),
    ]
    assert [key for _, key, _ in fake.refunds()[2:]] == [key for _, key, _ in fake.refunds()[:2]]
    assert len(_effects(fake, "refund")) == 2
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.state, theirs.state) == (OrderState.CAPTURED, OrderState.REFUNDED)  # one voucher used
    assert sorted(mine.vouchers.values_list("state", flat=True)) == [
        VoucherState.REDEEMED,
        VoucherState.REFUNDED,
    ]
    assert _balance(AccountKind.MERCHANT_PAYABLE, owner=merchant) == SHARE
    assert _balance(AccountKind.PLATFORM_FEE, name="platform") == FEE
    assert _balance(AccountKind.GATEWAY, name="card") == -PRICE
    assert ledger_report().ok


def test_a_team_that_does_not_fill_voids_each_hold_once_after_a_failing_provider(
    provider, shopper, outsider, make_live_deal
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, team_price=8_000, team_size=3)
    leader = order_place(deal_id=deal.id, buyer=shopper, quantity=1, team="start", gateway="card")
    member = order_place(deal_id=deal.id, buyer=outsider, quantity=1, team=leader.team_id, gateway="card")
    assert (leader.state, member.state) == (OrderState.AUTHORIZED, OrderState.AUTHORIZED)

    fake.outage = 500
    closed = timezone.now() + timedelta(hours=25)
    deals_sweep(now=closed)  # the team's 24 hours are over; the voids fail, the sweep goes on
    assert Team.objects.get(orders=leader).state == TeamState.EXPIRED
    # Being released: no longer buyers, their units given back, their money held until the voids are done.
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.VOIDING}
    deal.refresh_from_db()
    assert (deal.sold, deal.takers) == (0, 0)
    assert not Posting.objects.filter(kind="void").exists()
    assert _balance(AccountKind.HELD, owner=shopper) == 8_000
    assert ledger_report().ok

    fake.outage = None
    assert deals_sweep(now=closed + timedelta(minutes=1))["voided"] == 2
    deals_sweep(now=closed + timedelta(minutes=2))
    voids = [
        (f"/authorizations/{order.payment_ref}/void", f"order:{order.id}:void") for order in (leader, member)
    ]
    assert sorted(_effects(fake, "void")) == sorted(voids)
    assert sorted({(path, key) for path, key, _ in fake.requests if path.endswith("/void")}) == sorted(voids)
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.VOIDED}
    assert Posting.objects.filter(kind="void").count() == 2
    deal.refresh_from_db()
    assert (deal.sold, deal.takers) == (0, 0)
    assert _balance(AccountKind.HELD, owner=shopper) == _balance(AccountKind.HELD, owner=outsider) == 0
    assert _balance(AccountKind.GATEWAY, name="card") == 0
    assert ledger_report().ok


def test_a_failed_deal_voids_each_hold_once_when_the_answers_were_lost(
    provider, shopper, outsider, make_live_deal
):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=5)
    held = [
        order_place(deal_id=deal.id, buyer=buyer, quantity=1, gateway="card") for buyer in (shopper, outsider)
    ]
    # The provider voids, but answers after the platform stopped waiting.
    _gateway_at(gateway.base_url, timeout=0.3)
    fake.late_by = 1.0
    ended = timezone.now() + timedelta(days=3)
    deals_sweep(now=ended)
    assert Deal.objects.get(id=deal.id).state == DealState.FAILED
    assert [fake.holds[order.payment_ref]["status"] for order in held] == ["voided", "voided"]
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.VOIDING}
    assert ledger_report().open_holds_on_ended_deals == [order.id for order in held]

    fake.late_by = 0
    assert deals_sweep(now=ended + timedelta(minutes=1))["settled"] == 1
    voids = [(f"/authorizations/{order.payment_ref}/void", f"order:{order.id}:void") for order in held]
    assert sorted(_effects(fake, "void")) == sorted(voids)
    asked = [(path, key) for path, key, _ in fake.requests if path.endswith("/void")]
    assert sorted(asked) == sorted(voids * 2)  # each asked twice under one key, carried out once
    assert set(Order.objects.filter(deal=deal).values_list("state", flat=True)) == {OrderState.VOIDED}
    assert Posting.objects.filter(kind="void").count() == 2
    assert _balance(AccountKind.GATEWAY, name="card") == 0
    assert ledger_report().ok


@pytest.mark.parametrize(
    ("trouble", "retry"),
    [("server_error", "sweep"), ("answer_lost", "task"), ("connection_refused", "sweep")],
)
def test_a_refund_the_provider_fails_is_completed_once_later(
    provider, api_as, shopper, merchant, make_live_deal, trouble, retry
):
    fake, gateway = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order = _paid_by_card(deal, shopper, quantity=2)
    codes = list(order.vouchers.values_list("code", flat=True))
    if trouble == "server_error":
        fake.outage = 500
    elif trouble == "answer_lost":  # the provider refunds, and answers after the platform stopped waiting
        _gateway_at(gateway.base_url, timeout=0.3)
        fake.late_by = 1.0
    else:
        _gateway_at(closed_port_url())

    asked = api_as(shopper).post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert asked.status_code == 503, asked.content
    answer = asked.json()
    assert (answer["code"], answer["order_id"]) == ("refund_pending", order.id)
    assert answer["error"].endswith("the refund is recorded and will be completed automatically")
    # Nothing half-done: the order is paid, no money moved in the ledger, and the vouchers are out of use.
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    assert not Posting.objects.filter(order=order, kind="refund").exists()
    refund = Refund.objects.get(order=order)
    assert (refund.state, refund.amount, refund.attempts) == (RefundState.REQUESTED, 2 * PRICE, 1)
    for code in codes:
        refused = api_as(merchant).post(f"/api/v1/vouchers/{code}/redeem")
        assert (refused.status_code, refused.json()["code"]) == (409, "voucher_refunded")
    assert ledger_report().ok
    # Not due again yet: a sweep now leaves it alone.
    deals_sweep()
    assert Refund.objects.get(id=refund.id).state == RefundState.REQUESTED

    fake.outage, fake.late_by = None, 0
    _gateway_at(gateway.base_url)
    if retry == "sweep":
        assert deals_sweep(now=timezone.now() + timedelta(minutes=5))["refunds_completed"] == 1
    else:
        Refund.objects.filter(id=refund.id).update(retry_at=timezone.now())  # the task's time has come
        assert tasks.refund_complete_task.call(refund.id) is True
    assert tasks.refund_complete_task.call(refund.id) is False
    assert deals_sweep(now=timezone.now() + timedelta(hours=2))["refunds_completed"] == 0

    order.refresh_from_db()
    assert order.state == OrderState.REFUNDED
    key = f"order:{order.id}:refund:{refund.id}"
    path = f"/authorizations/{order.payment_ref}/refund"
    assert _effects(fake, "refund") == [(path, key)]
    assert fake.holds[order.payment_ref]["refunded"] == 2 * PRICE
    expected = [(path, key, {"amount": 2 * PRICE, "currency": "CNY"})]
    assert fake.refunds() == expected * (1 if trouble == "connection_refused" else 2)
    assert Posting.objects.filter(order=order, kind="refund").count() == 2
    assert _balance(AccountKind.MERCHANT_PAYABLE, owner=merchant) == 0
    assert _balance(AccountKind.GATEWAY, name="card") == 0
    assert ledger_report().ok


def test_a_refund_the_provider_refuses_is_a_json_error_and_changes_nothing(
    provider, api_as, shopper, merchant, make_live_deal
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1)
    order = _paid_by_card(deal, shopper)
    fake.refusing_refunds.add(order.payment_ref)
    api = api_as(shopper)
    refused = api.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert refused.status_code == 409, refused.content
    assert refused.json() == {
        "error": "The payment provider refused the refund: the charge is disputed",
        "code": "refund_declined",
        "order_id": order.id,
        "provider_message": "the charge is disputed",
    }
    order.refresh_from_db()
    assert order.state == OrderState.CAPTURED
    assert list(order.vouchers.values_list("state", flat=True)) == [VoucherState.VALID]
    assert not Posting.objects.filter(order=order, kind="refund").exists()
    assert list(Refund.objects.values_list("state", flat=True)) == [RefundState.DECLINED]
    # Declined is final: no sweep asks again.
    deals_sweep(now=timezone.now() + timedelta(hours=2))
    assert len(fake.refunds()) == 1

    # Once the provider would refund, the buyer asks again: a new refund, under a key of its own.
    fake.refusing_refunds.clear()
    again = api.post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (again.status_code, again.json()["state"]) == (200, "refunded")
    first, second = (key for _, key, _ in fake.refunds())
    assert first != second
    assert len(_effects(fake, "refund")) == 2  # the refused one and the refund
    assert fake.holds[order.payment_ref]["refunded"] == PRICE
    assert ledger_report().ok

    # A refused refund of a voucher that is still valid leaves it redeemable.
    other = _paid_by_card(deal, make_user("second_buyer"))
    fake.refusing_refunds.add(other.payment_ref)
    browser = Client()
    browser.force_login(other.buyer)
    shown = browser.post(reverse("deals:order_action", args=[other.id, "refund"]), follow=True)
    assert "the charge is disputed" in shown.content.decode()
    voucher = voucher_redeem(code=other.vouchers.get().code, by=merchant)
    assert voucher.state == VoucherState.REDEEMED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_attempts_racing_on_a_pending_refund_ask_the_provider_once(provider, shopper, make_live_deal):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order = _paid_by_card(deal, shopper, quantity=2)
    fake.outage = 503
    with pytest.raises(RefundPending):
        order_refund(order_id=order.id, by=shopper)
    fake.outage = None
    fake.late_by = 0.2  # each answer takes a while: the attempts overlap
    refund = Refund.objects.get(order=order)
    due = timezone.now() + timedelta(minutes=5)
    barrier = threading.Barrier(8)

    def attempt(index: int) -> int:
        try:
            barrier.wait()
            if index == 0:
                return deals_sweep(now=due)["refunds_completed"]
            return int(refunds.refund_attempt(refund_id=refund.id, now=due))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        completed = list(pool.map(attempt, range(8)))
    assert sum(completed) == 1
    # The failed attempt and one more reached the provider; the other attempts found the refund taken.
    assert len(fake.refunds()) == 2
    assert len(_effects(fake, "refund")) == 1
    assert Order.objects.get(id=order.id).state == OrderState.REFUNDED
    assert Posting.objects.filter(order=order, kind="refund").count() == 2
    assert ledger_report().ok


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_refund_waiting_for_its_provider_shows_on_my_orders_and_in_the_order(
    provider, api_as, shopper, make_live_deal
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    waiting = _paid_by_card(deal, shopper, quantity=2)
    other = _paid_by_card(make_live_deal(title="另一单", tipping_point=1), shopper)
    api = api_as(shopper)
    assert api.get(f"/api/v1/orders/{waiting.id}").json()["refund"] is None
    fake.outage = 500
    asked = api.post(f"/api/v1/orders/{waiting.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (asked.status_code, asked.json()["code"]) == (503, "refund_pending")
    refund = Refund.objects.get(order=waiting)

    # The order is still paid; its refund is asked for and not confirmed yet.
    shown = api.get(f"/api/v1/orders/{waiting.id}").json()
    codes = list(waiting.vouchers.order_by("id").values_list("code", flat=True))
    assert (shown["state"], shown["vouchers"]) == ("captured", codes)
    requested = shown["refund"]
    assert (requested["state"], requested["amount"]) == ("requested", 2 * PRICE)
    assert abs(_moment(requested["requested_at"]) - refund.created_at) < timedelta(milliseconds=1)
    assert api.get(f"/api/v1/orders/{other.id}").json()["refund"] is None
    browser = Client()
    browser.force_login(shopper)
    for language, pending in (("zh-hans", "退款处理中"), ("en", "Refund pending")):
        page = browser.get(reverse("deals:my_orders"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert page.count(pending) == 1, language
        # Refund is offered for the other paid order only: this one's is under way.
        assert f'action="{reverse("deals:order_action", args=[waiting.id, "refund"])}"' not in page
        assert f'action="{reverse("deals:order_action", args=[other.id, "refund"])}"' in page

    # Once the provider confirms it, the order is refunded and nothing is pending any more.
    fake.outage = None
    assert deals_sweep(now=timezone.now() + timedelta(minutes=5))["refunds_completed"] == 1
    done = api.get(f"/api/v1/orders/{waiting.id}").json()
    assert done["state"] == "refunded"
    assert done["refund"] == {**requested, "state": "completed"}
    page = browser.get(reverse("deals:my_orders"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Refund pending" not in page
    assert ledger_report().ok


def test_a_retry_of_a_refund_first_answered_refund_pending_gets_the_order_once_refunded(
    provider, api_as, shopper, make_live_deal
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order = _paid_by_card(deal, shopper, quantity=2)
    other = _paid_by_card(make_live_deal(title="另一单", tipping_point=1), shopper)
    api = api_as(shopper)
    path = f"/api/v1/orders/{order.id}/refund"
    fake.outage = 500
    first = api.post(path, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (first.status_code, first.json()["code"]) == (503, "refund_pending")
    # The same request again while the provider is still away: still pending, no second refund.
    again = api.post(path, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (again.status_code, again.json()["code"]) == (503, "refund_pending")
    assert Refund.objects.filter(order=order).count() == 1
    # The key names that request: another one sent with it is refused and changes nothing.
    for other_path in (f"/api/v1/orders/{other.id}/refund", "/api/v1/wallet/top_up"):
        refused = api.post(
            other_path, data={"amount": 100}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="refund-1"
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "idempotency_mismatch"), other_path
    assert not Refund.objects.filter(order=other).exists()
    assert _balance(AccountKind.WALLET, owner=shopper) == 0

    # The provider comes back and the sweep completes the refund; the client's retry learns it went through.
    fake.outage = None
    assert deals_sweep(now=timezone.now() + timedelta(minutes=5))["refunds_completed"] == 1
    retried = api.post(path, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert retried.status_code == 200, retried.content
    assert retried.json() == api.get(f"/api/v1/orders/{order.id}").json()
    assert (retried.json()["state"], retried.json()["refund"]["state"]) == ("refunded", "completed")
    assert api.post(path, HTTP_IDEMPOTENCY_KEY="refund-1").json() == retried.json()
    # A new request to refund the refunded order is still refused.
    second = api.post(path, HTTP_IDEMPOTENCY_KEY="refund-2")
    assert (second.status_code, second.json()["code"]) == (409, "refund_not_allowed")
    assert len(_effects(fake, "refund")) == 1
    assert Posting.objects.filter(order=order, kind="refund").count() == 2
    assert Order.objects.get(id=other.id).state == OrderState.CAPTURED
    assert ledger_report().ok


def test_a_refund_asked_for_while_an_attempt_of_it_is_under_way_is_a_conflict_to_read_again(
    provider, api_as, shopper, make_live_deal, monkeypatch
):
    fake, _ = provider
    monkeypatch.setattr(refunds, "IN_PROGRESS_WAIT", 0.2)
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    order = _paid_by_card(deal, shopper, quantity=2)
    fake.outage = 500
    with pytest.raises(RefundPending):
        order_refund(order_id=order.id, by=shopper)
    # Another request's attempt holds the refund now, as its claim leaves it.
    now = timezone.now()
    Refund.objects.filter(order=order).update(retry_at=now + refunds.ATTEMPT_LEASE, attempt_started_at=now)
    fake.outage = None
    asked = api_as(shopper).post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-2")
    assert (asked.status_code, asked.json()["code"]) == (409, "refund_in_progress")
    assert len(fake.refunds()) == 1  # only the failed attempt reached the provider
    assert Order.objects.get(id=order.id).state == OrderState.CAPTURED
    browser = Client()
    browser.force_login(shopper)
    shown = browser.post(reverse("deals:order_action", args=[order.id, "refund"]), follow=True)
    assert "退款正在办理中，请稍后再查看这笔订单。" in shown.content.decode()

    # An attempt that outlived its lease (its process died) no longer holds the refund: the next asks.
    Refund.objects.filter(order=order).update(
        retry_at=now, attempt_started_at=now - refunds.ATTEMPT_LEASE - timedelta(seconds=1)
    )
    again = api_as(shopper).post(f"/api/v1/orders/{order.id}/refund", HTTP_IDEMPOTENCY_KEY="refund-2")
    assert (again.status_code, again.json()["state"]) == (200, "refunded")
    assert Refund.objects.get(order=order).state == RefundState.COMPLETED
    assert ledger_report().ok


def _second_request_at_the_provider(
    fake: Any, monkeypatch: Any, order: Order, buyer: Any, *, answered_after: bool
) -> tuple[str, str]:
    """A buyer's refund request made while another request's attempt of the same refund is at the
    provider: the second request reads the order before the first writes its refund, and asks for its
    own once the first's attempt is under way. With `answered_after` the provider answers the first
    once the second is waiting for it, else only after the second has given up waiting. The answers
    (state or code) of the first request and of the second."""
    second_may_ask, second_waits, second_at_request = threading.Event(), threading.Event(), threading.Event()
    original_request, original_await = refunds.refund_request, refunds._attempt_await

    def request_later(**kwargs: Any) -> Any:
        if threading.current_thread().name == "second":
            second_at_request.set()
            assert second_may_ask.wait(10)
        return original_request(**kwargs)

    def await_seen(refund_id: int) -> None:
        second_waits.set()
        original_await(refund_id)

    answers: dict[str, str] = {}

    def ask(who: str) -> None:
        try:
            answers[who] = order_refund(order_id=order.id, by=buyer).state
        except (RefundPending, Conflict) as exc:
            answers[who] = exc.code
        finally:
            if who == "second":
                connections.close_all()

    second = threading.Thread(target=ask, args=("second",), name="second")

    def at_the_provider() -> None:
        second_may_ask.set()
        if answered_after:
            assert second_waits.wait(10)
        else:
            second.join(10)

    fake.while_handling["refund"] = at_the_provider
    with monkeypatch.context() as patch:
        patch.setattr(refunds, "refund_request", request_later)
        patch.setattr(refunds, "_attempt_await", await_seen)
        second.start()
        assert second_at_request.wait(10)
        ask("first")
        second.join(10)
    return answers["first"], answers["second"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refund_request_meeting_another_at_the_provider_reads_its_outcome_or_a_conflict(
    provider, shopper, make_live_deal, monkeypatch
):
    fake, _ = provider
    deal = make_live_deal(tipping_point=1, per_user_limit=2)
    # The provider answers while the second request waits: both read the refunded order.
    order = _paid_by_card(deal, shopper, quantity=2)
    answers = _second_request_at_the_provider(fake, monkeypatch, order, shopper, answered_after=True)
    assert answers == (OrderState.REFUNDED, OrderState.REFUNDED)
    assert len(_effects(fake, "refund")) == 1
    assert Refund.objects.filter(order=order).count() == 1
    assert Posting.objects.filter(order=order, kind="refund").count() == 2

    # The provider slower than the wait: the second request is told the refund is under way.
    monkeypatch.setattr(refunds, "IN_PROGRESS_WAIT", 0.2)
    other = _paid_by_card(make_live_deal(title="另一单", tipping_point=1, per_user_limit=2), shopper, 2)
    answers = _second_request_at_the_provider(fake, monkeypatch, other, shopper, answered_after=False)
    assert answers == (OrderState.REFUNDED, "refund_in_progress")
    assert Refund.objects.filter(order=other).count() == 1
    assert Order.objects.get(id=other.id).state == OrderState.REFUNDED
    assert len(_effects(fake, "refund")) == 2
    assert ledger_report().ok
