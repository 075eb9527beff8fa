"""Profile fields and posting defaults through `user_profile_update`: what is kept, and refusals that
change nothing."""

import pytest

from weituan.accounts import services
from weituan.accounts.models import User
from weituan.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def _unchanged(user: User) -> tuple[object, ...]:
    user.refresh_from_db()
    return (user.display_name, user.profile_fields, user.default_privacy, user.default_language)


BEFORE: tuple[object, ...] = ("Alice 爱丽丝", [], "public", "")


def test_pairs_are_kept_stripped_in_order_with_the_empty_rows_dropped(shopper: User) -> None:
    services.user_profile_update(
        user=shopper,
        profile_fields=[
            ("  网店 ", " https://shop.example/a "),
            ("", "  "),
            ("营业时间", "10:00–22:00"),
            ("", ""),
        ],
    )
    shopper.refresh_from_db()
    assert shopper.profile_fields == [
        {"name": "网店", "value": "https://shop.example/a"},
        {"name": "营业时间", "value": "10:00–22:00"},
    ]
    # A name without a value is a field too (Mastodon keeps it).
    services.user_profile_update(user=shopper, profile_fields=[("城市", "")])
    shopper.refresh_from_db()
    assert shopper.profile_fields == [{"name": "城市", "value": ""}]
    # An empty list clears them; None leaves them.
    services.user_profile_update(user=shopper, profile_fields=None, display_name="A")
    shopper.refresh_from_db()
    assert shopper.profile_fields == [{"name": "城市", "value": ""}]
    services.user_profile_update(user=shopper, profile_fields=[])
    shopper.refresh_from_db()
    assert shopper.profile_fields == []


def test_four_pairs_at_the_limits_are_kept_and_empty_rows_do_not_count(shopper: User) -> None:
    pairs = [("名" * 255, "值" * 255)] * 4 + [("", "")]
    services.user_profile_update(user=shopper, profile_fields=pairs)
    shopper.refresh_from_db()
    assert shopper.profile_fields == [{"name": "名" * 255, "value": "值" * 255}] * 4


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")], "too_many_profile_fields"),
        ([("n" * 256, "v")], "profile_field_too_long"),
        ([("n", "v" * 256)], "profile_field_too_long"),
        ([("", "a value without a name")], "profile_field_name_blank"),
    ],
)
def test_bad_pairs_are_refused_and_nothing_is_saved(
    shopper: User, pairs: list[tuple[str, str]], code: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.user_profile_update(
            user=shopper, display_name="changed", default_privacy="private", profile_fields=pairs
        )
    assert (caught.value.code, caught.value.status, caught.value.details["field"]) == (
        code,
        422,
        "fields_attributes",
    )
    assert _unchanged(shopper) == BEFORE


def test_default_privacy(shopper: User) -> None:
    for privacy in ("unlisted", "private", "public"):
        services.user_profile_update(user=shopper, default_privacy=privacy)
        shopper.refresh_from_db()
        assert shopper.default_privacy == privacy
    for bad in ("direct", "everyone", "PUBLIC"):
        with pytest.raises(ValidationFailed) as caught:
            services.user_profile_update(user=shopper, display_name="changed", default_privacy=bad)
        assert caught.value.code == "invalid_privacy"
        assert _unchanged(shopper) == BEFORE


def test_default_language_and_the_language_new_posts_get(shopper: User) -> None:
    assert shopper.posting_language == ""
    shopper.locale = "zh-hans"
    shopper.save(update_fields=["locale"])
    assert shopper.posting_language == "zh"  # the site's language, without its script
    services.user_profile_update(user=shopper, default_language="JA")
    shopper.refresh_from_db()
    assert (shopper.default_language, shopper.posting_language, shopper.locale) == ("ja", "ja", "zh-hans")
    services.user_profile_update(user=shopper, default_language="zh_tw")
    shopper.refresh_from_db()
    assert shopper.default_language == "zh-TW"
    services.user_profile_update(user=shopper, default_language="")
    shopper.refresh_from_db()
    assert (shopper.default_language, shopper.posting_language) == ("", "zh")
    for bad in ("klingon", "1x", "zh-hans-cn-extra", "en us"):
        with pytest.raises(ValidationFailed) as caught:
            services.user_profile_update(user=shopper, default_language=bad)
        assert caught.value.code == "invalid_language"
    shopper.refresh_from_db()
    assert shopper.default_language == ""
