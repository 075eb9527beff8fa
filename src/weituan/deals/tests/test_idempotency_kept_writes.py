"""A team merge, a voucher's redemption and a deal's publication that took effect keep their
Idempotency-Key with the change, as a cancel does: a retry whose first answer was lost after the commit
(an outage answering 503 `unavailable`, a process that died before storing its answer, a record swept
after a day) is answered with the merged-into team, the redeemed voucher or the published deal, and
changes nothing; a change that fails keeps no key; the key names that one request of its sender across
every kind of write."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from weituan.accounts.tokens import access_token_issue
from weituan.core.errors import ServiceError
from weituan.core.idempotency import idempotency_records_prune, request_fingerprint, user_scope
from weituan.core.models import IdempotencyRecord
from weituan.core.testing import make_user
from weituan.deals import api as deals_api
from weituan.deals.models import Deal, Order, OrderState, Team, Voucher, WriteKey
from weituan.deals.services import schedule, teams, vouchers
from weituan.deals.services.deals import DealInput, deal_create, deal_publish, deal_tip_check
from weituan.deals.services.orders import order_place
from weituan.deals.services.teams import team_merge
from weituan.deals.services.vouchers import voucher_code_display, voucher_redeem
from weituan.deals.services.wallet import wallet_top_up
from weituan.deals.tests.conftest import live_deal
from weituan.deals.tests.test_idempotency_order_writes import _at_once, _mismatch

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def _fails_once(monkeypatch: Any, owner: Any, name: str) -> None:
    """The next call of `owner.name` fails, as a database dropping the connection at that point makes it
    fail (503 `unavailable`); the calls after it work."""
    real = getattr(owner, name)
    failed: list[bool] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


@dataclass
class KeptWrite:
    """One write that keeps its key, ready to send: `request` is what its kept key says, answered with
    its `field` row `answer_id`; `expected` is part of its answer."""

    sender: Any
    path: str
    body: dict[str, Any] | None
    # What the API tells this request by (`deals.api._once`), besides its method and path.
    fingerprinted: dict[str, Any]
    request: str
    field: str
    answer_id: int
    expected: dict[str, Any]
    # What the write made already answers, sent without its key.
    refusal: str
    # The function of `deals.api` making its answer, once the write has committed.
    answer_maker: str
    # A step inside the write's transaction, after it has kept its key.
    midway: tuple[Any, str]
    # The write through its service, with a key; returns the id of what answers it.
    run: Callable[[str], int]
    # The sender's same kind of write on something else, with a key; returns the id of what answers it.
    rival: Callable[[str], int]
    # Whether the write's change, and the rival's, are in place.
    made: Callable[[], tuple[bool, bool]]
    # Every row the write or its rival could change, as they stand now.
    changes: Callable[[], Any]

    def client(self) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {access_token_issue(user=self.sender)[0]}")

    def send(self, key: str, client: Client | None = None) -> Any:
        client = client or self.client()
        if self.body is None:
            return client.post(self.path, HTTP_IDEMPOTENCY_KEY=key)
        return client.post(self.path, self.body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)

    def kept(self, key: str) -> list[tuple[Any, ...]]:
        return [(self.sender.id, key, self.request, self.answer_id)]

    def answered(self, answer: Any) -> None:
        assert answer.status_code == 200, answer.content
        assert {name: answer.json()[name] for name in self.expected} == self.expected


def _merge(merchant: Any) -> KeptWrite:
    """The leader of a one-member team merges it into a team of two, which that fills."""
    deal = live_deal(
        merchant, team_price=5_000, team_size=3, deal_price=8_000, tipping_point=10, max_quantity=20
    )
    leader, host, guest, spare = (make_user(name) for name in ("lead_k", "host_k", "guest_k", "spare_k"))
    for person in (leader, host, guest, spare):
        wallet_top_up(user=person, amount=100_000)
    mine = order_place(deal_id=deal.id, buyer=leader, quantity=1, team="start").team_id
    into = order_place(deal_id=deal.id, buyer=host, quantity=1, team="start").team_id
    order_place(deal_id=deal.id, buyer=guest, quantity=1, team=into)
    other = order_place(deal_id=deal.id, buyer=spare, quantity=1, team="start").team_id
    assert mine and into and other

    def members(team_id: int) -> int:
        return Team.objects.get(id=team_id).members

    return KeptWrite(
        sender=leader,
        path=f"/api/v1/teams/{mine}/merge",
        body={"into": into},
        fingerprinted={"into": into},
        request=f"merge:{mine}:{into}",
        field="team",
        answer_id=into,
        expected={
            "id": into,
            "members": 3,
            "state": "filled",
            "member_names": ["lead_k", "host_k", "guest_k"],
        },
        refusal="team_closed",
        answer_maker="team_body",
        midway=(teams, "_team_filled"),
        run=lambda key: team_merge(team_id=mine, into_id=into, by=leader, client_key=key).id,
        rival=lambda key: team_merge(team_id=mine, into_id=other, by=leader, client_key=key).id,
        made=lambda: (members(into) == 3, members(other) == 2),
        changes=lambda: (
            list(Team.objects.order_by("id").values_list("id", "state", "members", "merged_into_id")),
            list(Order.objects.order_by("id").values_list("id", "state", "team_id")),
        ),
    )


def _redeem(merchant: Any) -> KeptWrite:
    """The merchant redeems the first of a buyer's two vouchers, its code typed in lower case with dashes."""
    deal = live_deal(merchant, tipping_point=1)
    holder = make_user("holder_k")
    wallet_top_up(user=holder, amount=100_000)
    order = order_place(deal_id=deal.id, buyer=holder, quantity=2)
    deal_tip_check(deal_id=deal.id)
    first, second = Voucher.objects.filter(order=order).order_by("id")

    def redeemed(voucher: Voucher) -> bool:
        return Voucher.objects.filter(id=voucher.id, state="redeemed").exists()

    typed = voucher_code_display(first.code).lower()
    return KeptWrite(
        sender=merchant,
        path=f"/api/v1/vouchers/{typed}/redeem",
        body=None,
        fingerprinted={"code": typed},
        request=f"redeem:{first.code}",
        field="voucher",
        answer_id=first.id,
        expected={"code": first.code, "state": "redeemed", "redeemed_by": merchant.username},
        refusal="already_redeemed",
        answer_maker="voucher_body",
        midway=(vouchers, "voucher_event_record"),
        run=lambda key: voucher_redeem(code=first.code, by=merchant, client_key=key).id,
        rival=lambda key: voucher_redeem(code=second.code, by=merchant, client_key=key).id,
        made=lambda: (redeemed(first), redeemed(second)),
        changes=lambda: list(
            Voucher.objects.order_by("id").values_list("id", "state", "redeemed_at", "redeemed_by_id")
        ),
    )


def _publish(merchant: Any) -> KeptWrite:
    """The merchant publishes a draft whose window has begun, so it goes live at once."""
    now = timezone.now()

    def draft(title: str) -> Deal:
        fields = DealInput(
            title=title,
            list_price=20_000,
            deal_price=9_900,
            max_quantity=10,
            tipping_point=3,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=3),
        )
        return deal_create(merchant=merchant, data=fields)

    first, second = draft("双人火锅套餐"), draft("单人午餐")

    def published(deal: Deal) -> bool:
        return Deal.objects.filter(id=deal.id).exclude(state="draft").exists()

    return KeptWrite(
        sender=merchant,
        path=f"/api/v1/deals/{first.id}/publish",
        body=None,
        fingerprinted={},
        request=f"publish:{first.id}",
        field="deal",
        answer_id=first.id,
        expected={"id": first.id, "state": "live", "released": 10, "merchant": merchant.username},
        refusal="already_published",
        answer_maker="deal_body",
        midway=(schedule, "schedule_at"),
        run=lambda key: deal_publish(deal_id=first.id, by=merchant, client_key=key).id,
        rival=lambda key: deal_publish(deal_id=second.id, by=merchant, client_key=key).id,
        made=lambda: (published(first), published(second)),
        changes=lambda: list(Deal.objects.order_by("id").values_list("id", "state", "released", "post_id")),
    )


WRITES = {"merge": _merge, "redeem": _redeem, "publish": _publish}


@pytest.fixture(params=list(WRITES))
def write(request: Any, merchant: Any) -> KeptWrite:
    return WRITES[request.param](merchant)


def _kept() -> list[tuple[Any, ...]]:
    """The kept keys, each with the id of what answers it."""
    rows = WriteKey.objects.order_by("id").values_list(
        "sender_id", "key", "request", "order", "team", "voucher", "deal"
    )
    return [(*row[:3], next(answer for answer in row[3:] if answer is not None)) for row in rows]


def test_a_write_whose_answer_was_lost_is_answered_with_what_it_changed(
    write: KeptWrite, monkeypatch: Any, clock: Any
) -> None:
    _fails_once(monkeypatch, deals_api, write.answer_maker)
    lost = write.send("lost-1")
    assert (lost.status_code, lost.json()["code"]) == (503, "unavailable"), lost.content
    # The write took effect and kept its key; its idempotency record was forgotten with the failure.
    assert write.made() == (True, False)
    assert _kept() == write.kept("lost-1")
    assert not IdempotencyRecord.objects.filter(key="lost-1").exists()
    after = write.changes()

    again = write.send("lost-1")
    write.answered(again)
    # Long after any record of its first answer was swept: the same answer, nothing moved.
    clock.forward(DAY + 60)
    idempotency_records_prune()
    assert not IdempotencyRecord.objects.exists()
    later = write.send("lost-1")
    assert (later.status_code, later.json()) == (200, again.json())
    assert write.changes() == after
    assert _kept() == write.kept("lost-1")


def test_a_write_whose_record_was_swept_is_answered_with_its_first_answer(
    write: KeptWrite, clock: Any
) -> None:
    first = write.send("done-1")
    write.answered(first)
    after = write.changes()
    # A day on, the sweep forgets its record: the key kept with the change answers instead.
    clock.forward(DAY + 60)
    assert idempotency_records_prune() == 1
    for _ in range(2):
        again = write.send("done-1")
        assert (again.status_code, again.json()) == (200, first.json())
    assert not IdempotencyRecord.objects.exists()
    assert write.changes() == after
    assert _kept() == write.kept("done-1")
    # Without the key, the write is refused as any write made already is, and changes nothing.
    plain = write.client().post(write.path, write.body or {}, content_type="application/json")
    assert plain.json()["code"] == write.refusal, plain.content
    assert write.changes() == after


def test_a_write_left_unanswered_by_a_crash_is_answered_at_once_and_after_the_stale_minute(
    write: KeptWrite, clock: Any
) -> None:
    # What a process that died between the write's commit and storing its answer leaves behind: the
    # change made, with its key, and the request's idempotency record unfinished.
    IdempotencyRecord.objects.create(
        scope=user_scope(write.sender.id),
        key="crash-1",
        request_hash=request_fingerprint("POST", write.path, write.fingerprinted),
    )
    assert write.run("crash-1") == write.answer_id
    after = write.changes()

    # Not "still being processed": the write is known to have taken effect.
    first = write.send("crash-1")
    write.answered(first)
    # Past the minute after which an unfinished record is taken over and its request run again, and a
    # day on: still the same answer, never a refusal of the write made already.
    for seconds in (61, DAY):
        clock.forward(seconds)
        retry = write.send("crash-1")
        assert (retry.status_code, retry.json()) == (200, first.json())
    assert write.changes() == after


def test_a_write_that_fails_midway_keeps_no_key_and_its_retry_makes_it(
    write: KeptWrite, monkeypatch: Any
) -> None:
    before = write.changes()
    _fails_once(monkeypatch, *write.midway)
    failed = write.send("mid-1")
    assert (failed.status_code, failed.json()["code"]) == (503, "unavailable"), failed.content
    # The whole change rolled back, its kept key with it.
    assert write.changes() == before
    assert (write.made(), WriteKey.objects.count(), IdempotencyRecord.objects.count()) == (
        (False, False),
        0,
        0,
    )

    retried = write.send("mid-1")
    write.answered(retried)
    assert write.made() == (True, False)
    assert _kept() == write.kept("mid-1")


def test_one_key_names_one_request_of_its_sender_whatever_its_kind(write: KeptWrite, fund: Any) -> None:
    rival = make_user("rival_k", merchant=True)
    deal = live_deal(rival, tipping_point=5, per_user_limit=2)
    fund(write.sender)
    cancelled = order_place(deal_id=deal.id, buyer=write.sender, quantity=1)
    held = order_place(deal_id=deal.id, buyer=write.sender, quantity=1)
    client = write.client()
    assert client.post(f"/api/v1/orders/{cancelled.id}/cancel", HTTP_IDEMPOTENCY_KEY="c-1").status_code == 200
    # Only the rows that changed keep the keys now.
    IdempotencyRecord.objects.all().delete()
    before = write.changes()

    # The key a cancel kept is refused for this write, which changes nothing.
    _mismatch(write.send("c-1", client))
    assert (write.changes(), write.made()) == (before, (False, False))

    write.answered(write.send("w-1", client))
    IdempotencyRecord.objects.all().delete()
    after = write.changes()
    # The key this write kept is refused for a cancel, a checkout and a switch to the solo price.
    _mismatch(client.post(f"/api/v1/orders/{held.id}/cancel", HTTP_IDEMPOTENCY_KEY="w-1"))
    _mismatch(
        client.post(
            f"/api/v1/deals/{deal.id}/orders",
            {"quantity": 1},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="w-1",
        )
    )
    _mismatch(client.post(f"/api/v1/orders/{held.id}/solo", HTTP_IDEMPOTENCY_KEY="w-1"))
    # And for the same kind of write asking for something else, through the service too.
    with pytest.raises(ServiceError) as other:
        write.rival("w-1")
    assert other.value.code == "idempotency_mismatch"
    assert Order.objects.get(id=held.id).state == OrderState.AUTHORIZED
    assert Order.objects.filter(buyer=write.sender, deal=deal).count() == 2
    assert (write.changes(), write.made()) == (after, (True, False))
    assert _kept() == [(write.sender.id, "c-1", f"cancel:{cancelled.id}", cancelled.id), *write.kept("w-1")]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_retries_at_once_of_a_write_whose_answer_was_lost(
    write: KeptWrite, monkeypatch: Any, clock: Any
) -> None:
    clients = [write.client() for _ in range(8)]
    _fails_once(monkeypatch, deals_api, write.answer_maker)
    assert write.send("lost-2", clients[0]).status_code == 503
    after = write.changes()
    clock.forward(DAY)
    idempotency_records_prune()

    answers = _at_once(8, lambda index: write.send("lost-2", clients[index]))
    for answer in answers:
        write.answered(answer)
    assert [answer.json() for answer in answers] == [answers[0].json()] * 8
    assert write.changes() == after
    assert _kept() == write.kept("lost-2")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_write_sent_at_once_changes_once_and_answers_every_one(write: KeptWrite) -> None:
    outcomes = _at_once(8, lambda index: write.run("twice-2"))
    assert outcomes == [write.answer_id] * 8
    assert write.made() == (True, False)
    assert _kept() == write.kept("twice-2")
    write.answered(write.send("twice-2"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_under_one_key_change_one_thing(write: KeptWrite) -> None:
    """Half the threads ask for the write, half for its rival, all under one key: one of the two is
    made, and every other attempt is refused, its change rolled back with the key it could not keep."""
    outcomes = _at_once(8, lambda index: (write.run if index % 2 else write.rival)("both-3"))
    made = write.made()
    assert made in ((True, False), (False, True))
    (kept,) = WriteKey.objects.values_list("request", flat=True)
    assert (kept == write.request) == made[0]
    answered = {outcome for outcome in outcomes if outcome != "idempotency_mismatch"}
    assert len(answered) == 1
    assert (answered == {write.answer_id}) == made[0]
