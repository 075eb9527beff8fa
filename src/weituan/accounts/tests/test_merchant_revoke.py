"""Operators take a merchant's V badge away: confirmed, operator-only, recorded as the verification
was, and gone from every page and API answer at once."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from weituan.accounts import services
from weituan.accounts.models import MerchantApplication, User
from weituan.core.errors import Conflict, PermissionDenied
from weituan.microblog.services.posts import post_create

pytestmark = pytest.mark.django_db

BADGE = 'class="badge-v"'


def _logged_in(user: User, **client_options: Any) -> Client:
    client = Client(**client_options)
    client.force_login(user)
    return client


def _revoke_url(user: User) -> str:
    return reverse("accounts:operator_merchant_revoke", kwargs={"user_id": user.pk})


def _verified_by_application(user: User, operator: User) -> MerchantApplication:
    application = services.merchant_apply(user=user, shop_name="爱丽丝烘焙")
    return services.merchant_application_approve(operator=operator, application_id=application.pk)


def _unchanged(user: User) -> tuple[Any, ...]:
    user.refresh_from_db()
    return (user.is_merchant, user.verified_at, user.verified_by_id)


class TestService:
    def test_the_approved_application_records_who_revoked_when_and_why(
        self, shopper: User, operator: User
    ) -> None:
        approved = _verified_by_application(shopper, operator)
        before = timezone.now()

        revoked = services.merchant_verification_revoke(
            operator=operator, user_id=shopper.pk, note="  假冒品牌  "
        )

        assert (revoked.is_merchant, revoked.is_verified_merchant) == (True, False)
        assert (revoked.verified_at, revoked.verified_by_id) == (None, None)
        record = MerchantApplication.objects.get(pk=approved.pk)
        assert (record.state, record.revoked_by_id, record.revocation_note) == (
            "revoked",
            operator.pk,
            "假冒品牌",
        )
        assert record.revoked_at is not None and record.revoked_at >= before
        # The approval stays on the record: who gave the badge, and when.
        assert (record.decided_by_id, record.state_changed_at) == (operator.pk, approved.state_changed_at)
        assert MerchantApplication.objects.filter(user=shopper).count() == 1

        # Revoked, the account may apply again.
        again = services.merchant_apply(user=shopper, shop_name="爱丽丝烘焙（新）")
        assert again.state == "pending"

    def test_a_merchant_verified_without_an_application_gets_a_revoked_record(
        self, merchant: User, operator: User
    ) -> None:
        verified_at = merchant.verified_at
        services.merchant_verification_revoke(operator=operator, user_id=merchant.pk, note="资质过期")
        record = MerchantApplication.objects.get(user=merchant)
        assert (record.state, record.shop_name, record.revoked_by_id, record.revocation_note) == (
            "revoked",
            "美团小店",
            operator.pk,
            "资质过期",
        )
        assert record.state_changed_at == verified_at

    def test_only_an_operator_may_revoke_and_a_refusal_changes_nothing(
        self, merchant: User, outsider: User, shopper: User, operator: User
    ) -> None:
        before = _unchanged(merchant)
        for actor in (outsider, merchant):
            with pytest.raises(PermissionDenied) as caught:
                services.merchant_verification_revoke(operator=actor, user_id=merchant.pk)
            assert caught.value.code == "not_operator"
        assert _unchanged(merchant) == before
        assert not MerchantApplication.objects.exists()

        services.merchant_verification_revoke(operator=operator, user_id=merchant.pk)
        with pytest.raises(Conflict) as twice:
            services.merchant_verification_revoke(operator=operator, user_id=merchant.pk)
        assert twice.value.code == "not_verified_merchant"
        with pytest.raises(Conflict):
            services.merchant_verification_revoke(operator=operator, user_id=shopper.pk)
        assert MerchantApplication.objects.filter(state="revoked").count() == 1


class TestOperatorPage:
    def test_the_operator_confirms_and_the_badge_is_gone_everywhere_at_once(
        self, merchant: User, shopper: User, operator: User
    ) -> None:
        post = post_create(author=merchant, text="今日特价：双人火锅套餐")
        reader = _logged_in(shopper)
        api = Client()
        pages = {
            "profile": lambda: reader.get(f"/@{merchant.username}").content.decode(),
            "post": lambda: reader.get(
                reverse("microblog:post", kwargs={"post_id": post.pk})
            ).content.decode(),
        }
        answers = {
            "account": lambda: api.get(f"/api/v1/accounts/{merchant.pk}").json(),
            "lookup": lambda: api.get("/api/v1/accounts/lookup", {"acct": merchant.username}).json(),
            "status": lambda: api.get(f"/api/v1/statuses/{post.pk}").json()["account"],
            "statuses": lambda: api.get(f"/api/v1/accounts/{merchant.pk}/statuses").json()[0]["account"],
        }
        # Everything shows the badge first (and keeps what it rendered).
        assert {name: BADGE in read() for name, read in pages.items()} == {"profile": True, "post": True}
        assert {name: read()["verified_merchant"] for name, read in answers.items()} == dict.fromkeys(
            answers, True
        )

        staff = _logged_in(operator, enforce_csrf_checks=True)
        listing = staff.get(reverse("accounts:operator_merchants")).content.decode()
        assert f'href="{_revoke_url(merchant)}"' in listing
        confirm = staff.get(_revoke_url(merchant))
        assert confirm.status_code == 200
        token = confirm.context["csrf_token"]
        done = staff.post(
            _revoke_url(merchant), {"csrfmiddlewaretoken": str(token), "confirm": "on", "note": "资质过期"}
        )
        assert (done.status_code, done["Location"]) == (302, reverse("accounts:operator_merchants"))

        assert {name: BADGE in read() for name, read in pages.items()} == {"profile": False, "post": False}
        assert {name: read()["verified_merchant"] for name, read in answers.items()} == dict.fromkeys(
            answers, False
        )
        assert {name: read()["is_merchant"] for name, read in answers.items()} == dict.fromkeys(answers, True)
        record = MerchantApplication.objects.get(user=merchant)
        assert (record.state, record.revoked_by_id, record.revocation_note) == (
            "revoked",
            operator.pk,
            "资质过期",
        )
        after = staff.get(reverse("accounts:operator_merchants")).content.decode()
        assert f'href="{_revoke_url(merchant)}"' not in after
        # The merchant reads why on their application page.
        assert "资质过期" in _logged_in(merchant).get(reverse("accounts:merchant_apply")).content.decode()

    def test_unconfirmed_or_without_csrf_nothing_changes(self, merchant: User, operator: User) -> None:
        before = _unchanged(merchant)
        staff = _logged_in(operator, enforce_csrf_checks=True)
        token = str(staff.get(_revoke_url(merchant)).context["csrf_token"])

        unconfirmed = staff.post(_revoke_url(merchant), {"csrfmiddlewaretoken": token, "note": "x"})
        assert unconfirmed.status_code == 400
        assert "请勾选以确认。" in unconfirmed.content.decode()
        assert staff.post(_revoke_url(merchant), {"confirm": "on"}).status_code == 403  # no CSRF token
        by_get = staff.get(_revoke_url(merchant), {"confirm": "on"})
        assert by_get.status_code == 200
        assert _unchanged(merchant) == before
        assert not MerchantApplication.objects.exists()

    def test_outsiders_are_refused_and_nothing_changes(
        self, merchant: User, outsider: User, shopper: User, operator: User
    ) -> None:
        before = _unchanged(merchant)
        for intruder in (_logged_in(outsider), _logged_in(merchant)):
            assert intruder.get(_revoke_url(merchant)).status_code == 403
            assert intruder.post(_revoke_url(merchant), {"confirm": "on"}).status_code == 403
        anonymous = Client().post(_revoke_url(merchant), {"confirm": "on"})
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("accounts:login"))
        assert _unchanged(merchant) == before
        assert not MerchantApplication.objects.exists()
        # An account without the badge has nothing to revoke.
        staff = _logged_in(operator)
        assert staff.post(_revoke_url(shopper), {"confirm": "on"}).status_code == 302
        assert not MerchantApplication.objects.exists()


@pytest.mark.parametrize(
    ("language", "pending", "revoked"), [("zh-hans", "待审核", "已撤销"), ("en", "Pending", "Revoked")]
)
def test_an_application_page_names_its_states_in_the_readers_language(
    shopper: User, merchant: User, operator: User, language: str, pending: str, revoked: str
) -> None:
    services.merchant_apply(user=shopper, shop_name="小明面馆")
    waiting = _logged_in(shopper).get(
        reverse("accounts:merchant_apply"), headers={"Accept-Language": language}
    )
    assert pending in waiting.content.decode()
    services.merchant_verification_revoke(operator=operator, user_id=merchant.pk, note="")
    taken = _logged_in(merchant).get(
        reverse("accounts:merchant_apply"), headers={"Accept-Language": language}
    )
    assert revoked in taken.content.decode()
