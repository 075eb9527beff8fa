"""PATCH /api/v1/accounts/update_credentials: profile fields, `source[privacy]` and `source[language]`
in every encoding clients use, how the Account entity shows them, refusals that change nothing, and the
defaults new statuses get."""

import json
from typing import Any

import pytest
from django.test import Client

from weituan.accounts.models import User
from weituan.microblog.models import Post

pytestmark = pytest.mark.django_db

PATH = "/api/v1/accounts/update_credentials"
SCRIPT_VALUE = "<script>alert(1)</script> https://shop.example/x?a=1&b=2 #团购# javascript:alert(2)"
SCRIPT_HTML = (
    "&lt;script&gt;alert(1)&lt;/script&gt; "
    '<a href="https://shop.example/x?a=1&amp;b=2" rel="nofollow noopener noreferrer" target="_blank">'
    "https://shop.example/x?a=1&amp;b=2</a> "
    '<a href="http://testserver/topics/%E5%9B%A2%E8%B4%AD" class="mention hashtag" rel="tag">#团购#</a>'
    " javascript:alert(2)"
)


def _form(client: Any, body: str) -> Any:
    return client.patch(PATH, body, content_type="application/x-www-form-urlencoded")


def _json(client: Any, data: dict[str, Any]) -> Any:
    return client.patch(PATH, json.dumps(data), content_type="application/json")


def test_a_form_sets_fields_privacy_and_language(api_as: Any, shopper: User, client: Client) -> None:
    me = api_as(shopper)
    body = (
        "fields_attributes[0][name]=%E7%BD%91%E5%BA%97&fields_attributes[0][value]="
        + _quoted(SCRIPT_VALUE)
        + "&fields_attributes[1][name]=&fields_attributes[1][value]="
        + "&fields_attributes[2][name]=%3Cb%3Ecity%3C%2Fb%3E&fields_attributes[2][value]=Shanghai"
        + "&source[privacy]=unlisted&source[language]=ja"
    )
    answer = _form(me, body)
    assert answer.status_code == 200, answer.content
    account = answer.json()
    assert account["fields"] == [
        {"name": "网店", "value": SCRIPT_HTML, "verified_at": None},
        {"name": "<b>city</b>", "value": "Shanghai", "verified_at": None},
    ]
    assert account["source"]["fields"] == [
        {"name": "网店", "value": SCRIPT_VALUE, "verified_at": None},
        {"name": "<b>city</b>", "value": "Shanghai", "verified_at": None},
    ]
    assert (account["source"]["privacy"], account["source"]["language"]) == ("unlisted", "ja")
    assert me.get("/api/v1/accounts/verify_credentials").json()["source"] == account["source"]
    assert me.get("/api/v1/preferences").json()["posting:default:visibility"] == "unlisted"
    assert me.get("/api/v1/preferences").json()["posting:default:language"] == "ja"
    # Anyone reading the account sees the fields, never the source.
    public = client.get(f"/api/v1/accounts/{shopper.pk}").json()
    assert public["fields"] == account["fields"] and "source" not in public
    shopper.refresh_from_db()
    assert (shopper.default_privacy, shopper.default_language, shopper.locale) == ("unlisted", "ja", "")


def _quoted(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@pytest.mark.parametrize(
    "fields",
    [
        [{"name": "网店", "value": "https://shop.example"}, {"name": "城市", "value": "上海"}],
        {"0": {"name": "网店", "value": "https://shop.example"}, "1": {"name": "城市", "value": "上海"}},
        # Keyed by index, given out of order: the index decides.
        {"1": {"name": "城市", "value": "上海"}, "0": {"name": "网店", "value": "https://shop.example"}},
    ],
)
def test_json_gives_fields_as_an_array_or_an_object(api_as: Any, shopper: User, fields: Any) -> None:
    answer = _json(api_as(shopper), {"fields_attributes": fields, "source": {"privacy": "private"}})
    assert answer.status_code == 200, answer.content
    assert [(row["name"], row["value"]) for row in answer.json()["source"]["fields"]] == [
        ("网店", "https://shop.example"),
        ("城市", "上海"),
    ]
    assert answer.json()["source"]["privacy"] == "private"


def test_a_form_of_unindexed_rows_and_clearing(api_as: Any, shopper: User) -> None:
    me = api_as(shopper)
    body = "fields_attributes[][name]=a&fields_attributes[][value]=1&fields_attributes[][name]=b&fields_attributes[][value]=2"
    assert [(row["name"], row["value"]) for row in _form(me, body).json()["fields"]] == [
        ("a", "1"),
        ("b", "2"),
    ]
    # Leaving the parameter out changes nothing; sending only empty rows clears the fields.
    assert len(_form(me, "display_name=x").json()["fields"]) == 2
    cleared = _form(me, "fields_attributes[0][name]=&fields_attributes[0][value]=").json()
    assert (cleared["fields"], cleared["source"]["fields"]) == ([], [])


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (
            {"fields_attributes": [{"name": str(n), "value": "v"} for n in range(5)]},
            "too_many_profile_fields",
        ),
        ({"fields_attributes": [{"name": "n" * 256, "value": "v"}]}, "profile_field_too_long"),
        ({"fields_attributes": [{"name": "n", "value": "v" * 256}]}, "profile_field_too_long"),
        ({"fields_attributes": [{"name": "", "value": "v"}]}, "profile_field_name_blank"),
        ({"fields_attributes": ["not an object"]}, "invalid"),
        ({"fields_attributes": [{"name": {"nested": 1}, "value": "v"}]}, "invalid"),
        ({"source": {"privacy": "direct"}}, "invalid_privacy"),
        ({"source": {"privacy": "friends"}}, "invalid_privacy"),
        ({"source": {"language": "klingon"}}, "invalid_language"),
    ],
)
def test_bad_input_is_422_with_its_code_and_saves_nothing(
    api_as: Any, shopper: User, data: dict[str, Any], code: str
) -> None:
    me = api_as(shopper)
    assert _json(me, {"fields_attributes": [{"name": "旧", "value": "old"}]}).status_code == 200
    answer = _json(me, {"display_name": "changed", "note": "changed", "locked": True, **data})
    assert answer.status_code == 422, answer.content
    assert answer.json()["code"] == code
    assert answer.json()["error"]
    shopper.refresh_from_db()
    assert (
        shopper.display_name,
        shopper.bio,
        shopper.locked,
        shopper.profile_fields,
        shopper.default_privacy,
        shopper.default_language,
    ) == ("Alice 爱丽丝", "", False, [{"name": "旧", "value": "old"}], "public", "")


def test_new_statuses_take_the_defaults_unless_they_name_others(
    api_as: Any, shopper: User, merchant: User
) -> None:
    me = api_as(shopper)
    assert _json(me, {"source": {"privacy": "private", "language": "ja"}}).status_code == 200
    plain = me.post("/api/v1/statuses", {"status": "默认"}).json()
    assert (plain["visibility"], plain["language"]) == ("private", "ja")
    chosen = me.post("/api/v1/statuses", {"status": "公开", "visibility": "public", "language": "en"}).json()
    assert (chosen["visibility"], chosen["language"]) == ("public", "en")
    by_json = me.post(
        "/api/v1/statuses", json.dumps({"status": "json"}), content_type="application/json"
    ).json()
    assert (by_json["visibility"], by_json["language"]) == ("private", "ja")
    # A reblog that names no visibility takes the default too, as in Mastodon.
    theirs = api_as(merchant).post("/api/v1/statuses", {"status": "新品上架"}).json()
    assert theirs["visibility"] == "public"
    reblog = me.post(f"/api/v1/statuses/{theirs['id']}/reblog").json()
    assert reblog["visibility"] == "private"
    assert Post.objects.get(pk=int(plain["id"])).visibility == "private"
    # Without a default language, the language the site is read in gives it.
    shopper.refresh_from_db()
    shopper.locale = "zh-hans"
    shopper.save(update_fields=["locale"])
    assert _json(me, {"source": {"language": ""}}).json()["source"]["language"] == "zh"
    assert me.post("/api/v1/statuses", {"status": "中文"}).json()["language"] == "zh"


def test_a_profile_change_shows_in_the_statuses_that_embed_the_account(
    api_as: Any, shopper: User, merchant: User
) -> None:
    shop = api_as(merchant)
    status = shop.post("/api/v1/statuses", {"status": "周末特价"}).json()
    reader = api_as(shopper)
    assert reader.get(f"/api/v1/statuses/{status['id']}").json()["account"]["fields"] == []
    assert (
        _json(shop, {"fields_attributes": [{"name": "网店", "value": "https://shop.example"}]}).status_code
        == 200
    )
    fields = reader.get(f"/api/v1/statuses/{status['id']}").json()["account"]["fields"]
    assert [(row["name"], row["verified_at"]) for row in fields] == [("网店", None)]
    assert fields[0]["value"].startswith('<a href="https://shop.example"')
