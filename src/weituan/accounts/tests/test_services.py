"""Account services: registration, profile changes, merchant verification, last-seen."""

import io
import os
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from PIL import Image

from weituan.accounts import queries, services
from weituan.accounts.models import MerchantApplication, User
from weituan.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


def _png(size: tuple[int, int] = (800, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.django_db
class TestRegister:
    def test_creates_an_active_account_with_a_usable_password(self) -> None:
        user = services.user_register(
            username="小明_2024",
            email="Ming@Example.COM",
            password="a long passphrase",
            display_name=" 小明 ",
        )
        user.refresh_from_db()
        assert (user.username, user.email, user.display_name) == ("小明_2024", "Ming@example.com", "小明")
        assert user.is_active and user.check_password("a long passphrase")
        assert not user.is_merchant and not user.is_operator

    def test_username_taken_regardless_of_case(self, shopper: User) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.user_register(username="ALICE", email="new@example.test", password="a long passphrase")
        assert caught.value.code == "username_taken"
        details: Any = caught.value.details["details"]
        assert details["username"][0]["error"] == "ERR_TAKEN"
        assert User.objects.count() == 1

    def test_email_taken(self, shopper: User) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.user_register(
                username="alice2", email="ALICE@example.test", password="a long passphrase"
            )
        assert caught.value.code == "email_taken"

    @pytest.mark.parametrize(
        ("username", "email", "password", "field"),
        [
            ("a", "x@example.test", "a long passphrase", "username"),
            ("bad name", "x@example.test", "a long passphrase", "username"),
            ("<script>", "x@example.test", "a long passphrase", "username"),
            ("fine_name", "not-an-email", "a long passphrase", "email"),
            ("fine_name", "x@example.test", "short", "password"),
            ("fine_name", "x@example.test", "password123", "password"),
        ],
    )
    def test_bad_input_is_invalid_and_writes_nothing(
        self, username: str, email: str, password: str, field: str
    ) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.user_register(username=username, email=email, password=password)
        assert (caught.value.code, caught.value.details["field"]) == ("invalid", field)
        assert User.objects.count() == 0

    def test_reserved_names_are_refused(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.user_register(username="Admin", email="x@example.test", password="a long passphrase")
        assert caught.value.code == "username_reserved"


@pytest.mark.django_db
class TestProfile:
    def test_update_fields_and_avatar(self, shopper: User) -> None:
        services.user_profile_update(
            user=shopper,
            display_name="爱丽丝",
            bio="<b>hi</b>\nthere",
            locale="en_US",
            avatar=_png(),
            bot=True,
        )
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.bio, shopper.locale, shopper.bot) == (
            "爱丽丝",
            "<b>hi</b>\nthere",
            "en",
            True,
        )
        name = shopper.avatar.name or ""
        assert name.startswith("avatars/") and name.endswith(".png")
        with Image.open(shopper.avatar.path) as stored:
            assert stored.size == (400, 300)

    def test_bad_avatar_changes_nothing(self, shopper: User) -> None:
        with pytest.raises(ValidationFailed) as caught:
            services.user_profile_update(user=shopper, display_name="changed", avatar=b"GIF89a not really")
        assert caught.value.code == "invalid_image"
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.avatar.name) == ("Alice 爱丽丝", "")

    def test_replacing_an_avatar_removes_the_old_file(self, shopper: User, run_on_commit: Any) -> None:
        services.user_profile_update(user=shopper, avatar=_png((50, 50)))
        first = shopper.avatar.path
        with run_on_commit():
            services.user_profile_update(user=shopper, avatar=_png((60, 60)))
        shopper.refresh_from_db()
        assert shopper.avatar.path != first
        assert not os.path.exists(first)

    def test_limits(self, shopper: User) -> None:
        with pytest.raises(ValidationFailed):
            services.user_profile_update(user=shopper, display_name="x" * 51)
        with pytest.raises(ValidationFailed):
            services.user_profile_update(user=shopper, bio="x" * 501)
        with pytest.raises(ValidationFailed):
            services.user_profile_update(user=shopper, locale="klingon")
        shopper.refresh_from_db()
        assert (shopper.display_name, shopper.bio, shopper.locale) == ("Alice 爱丽丝", "", "")


@pytest.mark.django_db
class TestMerchantVerification:
    def test_apply_then_operator_approves(self, shopper: User, operator: User) -> None:
        application = services.merchant_apply(user=shopper, shop_name="Alice 的面包店", description="面包")
        assert application.state == "pending"
        assert not shopper.is_verified_merchant

        decided = services.merchant_application_approve(operator=operator, application_id=application.pk)

        shopper.refresh_from_db()
        assert (decided.state, decided.decided_by_id) == ("approved", operator.pk)
        assert shopper.is_merchant and shopper.is_verified_merchant
        assert shopper.verified_by_id == operator.pk

    def test_outsider_cannot_approve_and_nothing_changes(self, shopper: User, outsider: User) -> None:
        application = services.merchant_apply(user=shopper, shop_name="Alice 的面包店")
        with pytest.raises(PermissionDenied) as caught:
            services.merchant_application_approve(operator=outsider, application_id=application.pk)
        assert caught.value.code == "not_operator"
        with pytest.raises(PermissionDenied):
            services.merchant_application_approve(operator=shopper, application_id=application.pk)
        application.refresh_from_db()
        shopper.refresh_from_db()
        assert (application.state, application.decided_by_id) == ("pending", None)
        assert (shopper.is_merchant, shopper.verified_at) == (False, None)

    def test_reject_and_reapply(self, shopper: User, operator: User) -> None:
        first = services.merchant_apply(user=shopper, shop_name="Shop")
        with pytest.raises(Conflict) as caught:
            services.merchant_apply(user=shopper, shop_name="Shop again")
        assert caught.value.code == "application_pending"

        rejected = services.merchant_application_reject(
            operator=operator, application_id=first.pk, note="Need a licence"
        )
        assert (rejected.state, rejected.decision_note) == ("rejected", "Need a licence")
        with pytest.raises(Conflict) as caught:
            services.merchant_application_approve(operator=operator, application_id=first.pk)
        assert caught.value.code == "already_decided"
        shopper.refresh_from_db()
        assert not shopper.is_verified_merchant

        second = services.merchant_apply(user=shopper, shop_name="Shop, licensed")
        assert second.state == "pending"
        assert MerchantApplication.objects.filter(user=shopper).count() == 2

    def test_verified_merchant_cannot_apply(self, merchant: User) -> None:
        with pytest.raises(Conflict) as caught:
            services.merchant_apply(user=merchant, shop_name="Again")
        assert caught.value.code == "already_merchant"

    def test_unknown_application(self, operator: User) -> None:
        with pytest.raises(NotFound):
            services.merchant_application_approve(operator=operator, application_id=999_999)

    def test_revoke_verification(self, merchant: User, operator: User, outsider: User) -> None:
        with pytest.raises(PermissionDenied):
            services.merchant_verification_revoke(operator=outsider, user_id=merchant.pk)
        assert User.objects.get(pk=merchant.pk).is_verified_merchant
        services.merchant_verification_revoke(operator=operator, user_id=merchant.pk)
        assert not User.objects.get(pk=merchant.pk).is_verified_merchant

    def test_operator_queue_is_for_operators_only(
        self, shopper: User, operator: User, outsider: User
    ) -> None:
        services.merchant_apply(user=shopper, shop_name="Shop")
        assert [a.shop_name for a in queries.merchant_applications_for_operator(operator)] == ["Shop"]
        with pytest.raises(PermissionDenied):
            queries.merchant_applications_for_operator(outsider)


@pytest.mark.django_db
def test_last_seen_is_written_at_most_once_per_window(shopper: User) -> None:
    assert services.user_touch_last_seen(user_id=shopper.pk) is True
    first = User.objects.get(pk=shopper.pk).last_seen_at
    assert first is not None
    assert services.user_touch_last_seen(user_id=shopper.pk) is False  # gated by the cache
    assert User.objects.get(pk=shopper.pk).last_seen_at == first

    # With the gate gone (expired), the row is still written only when the stamp is old enough.
    cache.delete(services.last_seen_gate_key(shopper.pk))
    assert services.user_touch_last_seen(user_id=shopper.pk) is False
    cache.delete(services.last_seen_gate_key(shopper.pk))
    User.objects.filter(pk=shopper.pk).update(last_seen_at=timezone.now() - timedelta(minutes=6))
    assert services.user_touch_last_seen(user_id=shopper.pk) is True


@pytest.mark.django_db
def test_lookups(shopper: User, merchant: User) -> None:
    assert queries.user_by_username("@ALICE").pk == shopper.pk
    assert queries.user_by_username("alice@weituan.localhost").pk == shopper.pk
    with pytest.raises(NotFound):
        queries.user_by_username("nobody")
    assert queries.user_for_login("Alice@Example.test") == shopper
    assert queries.user_for_login("meituan_shop") == merchant
    assert queries.user_for_login("ghost@example.test") is None
    assert set(queries.users_by_usernames(["ALICE", "Meituan_Shop", "ghost"])) == {"alice", "meituan_shop"}
    counts = queries.user_counts(active_since=timezone.now() - timedelta(days=1))
    assert (counts.total, counts.active) == (2, 0)
