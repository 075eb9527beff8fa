"""A profile editor's save through the real Mastodon.py against a live server: fields, default privacy
and language, what other clients read back, the defaults a new status gets, and a refused save."""

from typing import Any

import pytest
from mastodon import MastodonAPIError

from weituan.accounts.models import User
from weituan.mastodon.tests.clients import shop_and_newcomer

pytestmark = pytest.mark.django_db(transaction=True)


def test_profile_fields_and_posting_defaults_through_mastodon_py(live_server: Any, merchant: User) -> None:
    shop, fan = shop_and_newcomer(live_server, "Weituan profile")
    me = shop.account_update_credentials(
        fields=[("网店", "https://shop.example/noodles"), ("营业时间", "10:00–22:00 <每天>")],
        default_privacy="unlisted",
        default_language="zh",
        locked=False,
    )
    assert [(field.name, field.verified_at) for field in me.fields] == [("网店", None), ("营业时间", None)]
    assert me.fields[0].value == (
        '<a href="https://shop.example/noodles" rel="nofollow noopener noreferrer" target="_blank">'
        "https://shop.example/noodles</a>"
    )
    assert me.fields[1].value == "10:00–22:00 &lt;每天&gt;"
    assert [(field.name, field.value) for field in me.source.fields] == [
        ("网店", "https://shop.example/noodles"),
        ("营业时间", "10:00–22:00 <每天>"),
    ]
    assert (me.source.privacy, me.source.language) == ("unlisted", "zh")
    again = shop.account_verify_credentials()
    assert (again.source.privacy, again.source.language, len(again.source.fields)) == ("unlisted", "zh", 2)
    assert shop.preferences()["posting:default:visibility"] == "unlisted"

    # Another client reads the fields, rendered.
    seen = fan.account(merchant.pk)
    assert [(field.name, field.value) for field in seen.fields] == [
        (field.name, field.value) for field in me.fields
    ]

    # Five fields are refused with 422 and the profile stays as it was.
    with pytest.raises(MastodonAPIError) as refused:
        shop.account_update_credentials(
            display_name="改了", fields=[(f"名{n}", "值") for n in range(5)], default_privacy="private"
        )
    assert refused.value.args[1:] == (422, "Unprocessable Content", "A profile has at most 4 fields")
    with pytest.raises(MastodonAPIError) as unknown:
        shop.account_update_credentials(default_privacy="everyone")
    assert unknown.value.args[1] == 422
    after = shop.account_verify_credentials()
    assert (after.display_name, after.source.privacy, len(after.fields)) == ("美团小店", "unlisted", 2)
    # A status posted without a visibility or a language takes the defaults.
    status = shop.status_post("新品上架")
    assert (status.visibility, status.language) == ("unlisted", "zh")
    chosen = shop.status_post("公开", visibility="public", language="en")
    assert (chosen.visibility, chosen.language) == ("public", "en")

    for client in (shop, fan):
        client.session.close()  # Mastodon.py keeps its connections open past the test otherwise
