"""The Mastodon lists API with the Django client: the entity's shape, paths and scopes, refusals with
their codes and nothing written, the accounts page with its `Link`, and the list timeline."""

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import make_user
from weituan.microblog.models import FollowList, FollowListMember
from weituan.microblog.services.lists import follow_list_create, follow_list_members_add
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import block_create, follow_create

pytestmark = pytest.mark.django_db


def _code(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def test_a_list_is_made_read_changed_and_deleted(api_as: Any, shopper: Any) -> None:
    client = api_as(shopper)
    made = client.post("/api/v1/lists", {"title": "好店", "replies_policy": "followed"})
    assert made.status_code == 200, made.content
    list_id = made.json()["id"]
    assert made.json() == {"id": list_id, "title": "好店", "replies_policy": "followed", "exclusive": False}
    assert client.get("/api/v1/lists").json() == [made.json()]
    assert client.get(f"/api/v1/lists/{list_id}").json() == made.json()

    changed = client.put(f"/api/v1/lists/{list_id}", {"title": "常去"}, content_type="application/json")
    assert changed.json() == {**made.json(), "title": "常去"}
    assert client.delete(f"/api/v1/lists/{list_id}").json() == {}
    assert _code(client.get(f"/api/v1/lists/{list_id}")) == (404, "not_found")
    assert client.get("/api/v1/lists").json() == []


def test_another_users_list_is_not_found_and_left_alone(
    api_as: Any, shopper: Any, outsider: Any, merchant: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    mine = follow_list_create(owner=shopper, title="mine")
    follow_list_members_add(owner=shopper, list_id=mine.pk, account_ids=[merchant.pk])
    follow_create(follower=outsider, followee_id=merchant.pk)
    other = api_as(outsider)
    base = f"/api/v1/lists/{mine.pk}"
    assert _code(other.get(base)) == (404, "not_found")
    assert _code(other.put(base, {"title": "x"}, content_type="application/json")) == (404, "not_found")
    assert _code(other.delete(base)) == (404, "not_found")
    assert _code(other.get(f"{base}/accounts")) == (404, "not_found")
    assert _code(other.post(f"{base}/accounts", {"account_ids[]": [merchant.pk]})) == (404, "not_found")
    assert _code(other.get(f"/api/v1/timelines/list/{mine.pk}")) == (404, "not_found")
    assert other.get(f"/api/v1/accounts/{merchant.pk}/lists").json() == []
    assert FollowList.objects.get().title == "mine"
    assert list(FollowListMember.objects.values_list("account_id", flat=True)) == [merchant.pk]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "title_blank"),
        ({"title": "   "}, "title_blank"),
        ({"title": "x" * 51}, "title_too_long"),
        ({"title": ["a"]}, "invalid"),
        ({"title": "a", "exclusive": True}, "exclusive_not_supported"),
        ({"title": "a", "exclusive": "maybe"}, "invalid"),
        ({"title": "a", "replies_policy": "everyone"}, "invalid_replies_policy"),
    ],
)
def test_a_refused_list_is_not_made(api_as: Any, shopper: Any, body: dict[str, Any], code: str) -> None:
    response = api_as(shopper).post("/api/v1/lists", body, content_type="application/json")
    assert _code(response) == (422, code)
    assert response.json()["error"]
    assert not FollowList.objects.exists()


def test_accounts_join_only_when_followed_and_page_with_link(
    api_as: Any, shopper: Any, outsider: Any
) -> None:
    shops = [make_user(f"shop{n}", merchant=True) for n in range(3)]
    for shop in shops:
        follow_create(follower=shopper, followee_id=shop.pk)
    client = api_as(shopper)
    list_id = client.post("/api/v1/lists", {"title": "店"}).json()["id"]
    accounts = f"/api/v1/lists/{list_id}/accounts"

    refused = client.post(accounts, {"account_ids[]": [shops[0].pk, outsider.pk]})
    assert _code(refused) == (422, "not_following")
    assert refused.json()["account_ids"] == [str(outsider.pk)]
    assert _code(client.post(accounts, {"account_ids[]": [shops[0].pk, 10**12]})) == (
        404,
        "account_not_found",
    )
    assert _code(client.post(accounts, {"account_ids[]": ["abc"]})) == (422, "invalid_id")
    assert _code(client.post(accounts, {})) == (422, "account_ids_missing")
    assert not FollowListMember.objects.exists()

    # JSON and form bodies alike; an account already in the list is no error.
    added = client.post(
        accounts, {"account_ids": [str(shops[0].pk), shops[1].pk]}, content_type="application/json"
    )
    assert (added.status_code, added.json()) == (200, {})
    assert client.post(accounts, {"account_ids[]": [shops[2].pk, shops[0].pk]}).json() == {}

    first = client.get(f"{accounts}?limit=2")
    assert [account["id"] for account in first.json()] == [str(shops[2].pk), str(shops[1].pk)]
    assert 'rel="next"' in first["Link"]
    next_url = first["Link"].split(">")[0].lstrip("<").replace("http://testserver", "")
    assert [account["id"] for account in client.get(next_url).json()] == [str(shops[0].pk)]

    lists_of = client.get(f"/api/v1/accounts/{shops[0].pk}/lists").json()
    assert [row["id"] for row in lists_of] == [list_id]
    assert _code(client.get("/api/v1/accounts/999999999/lists")) == (404, "account_not_found")

    form = urlencode({"account_ids[]": [shops[0].pk, outsider.pk]}, doseq=True)
    removed = client.delete(accounts, form, content_type="application/x-www-form-urlencoded")
    assert (removed.status_code, removed.json()) == (200, {})
    assert client.get(f"/api/v1/accounts/{shops[0].pk}/lists").json() == []


def test_the_list_timeline_pages_as_home_and_hides_blocked_authors(
    api_as: Any, shopper: Any, merchant: Any
) -> None:
    friend = make_user("bob")
    stranger = make_user("troll")
    for followee in (merchant, friend):
        follow_create(follower=shopper, followee_id=followee.pk)
    shops = follow_list_create(owner=shopper, title="店")
    follow_list_members_add(owner=shopper, list_id=shops.pk, account_ids=[merchant.pk])
    offer = post_create(author=merchant, text="今天半价")
    post_create(author=friend, text="not listed")
    trolled = post_create(author=stranger, text="来吵架")
    forwarded = repost_create(reposter=merchant, post_id=trolled.pk)
    newest = post_create(author=merchant, text="明天见")
    client = api_as(shopper)
    url = f"/api/v1/timelines/list/{shops.pk}"
    page = client.get(url)
    assert [status["id"] for status in page.json()] == [str(newest.pk), str(forwarded.pk), str(offer.pk)]
    assert page.json()[1]["reblog"]["id"] == str(trolled.pk)
    older = client.get(f"{url}?limit=1&max_id={newest.pk}")
    assert [status["id"] for status in older.json()] == [str(forwarded.pk)]
    assert f"max_id={forwarded.pk}" in older["Link"] and f"min_id={forwarded.pk}" in older["Link"]

    block_create(blocker=shopper, blocked_id=stranger.pk)
    assert [status["id"] for status in client.get(url).json()] == [str(newest.pk), str(offer.pk)]
    assert _code(client.get(f"{url}?limit=abc")) == (422, "invalid_limit")


def test_the_lists_scopes_are_mastodons(shopper: Any) -> None:
    def client_with(scope: str) -> Client:
        raw, _ = access_token_issue(user=shopper, scopes=scope)
        return Client(headers={"Authorization": f"Bearer {raw}"})

    reader = client_with("read:lists")
    assert reader.get("/api/v1/lists").status_code == 200
    assert reader.post("/api/v1/lists", {"title": "x"}).status_code == 403
    writer = client_with("write:lists")
    made = writer.post("/api/v1/lists", {"title": "x"})
    assert made.status_code == 200
    assert writer.get("/api/v1/lists").status_code == 403
    assert client_with("read:statuses").get(f"/api/v1/timelines/list/{made.json()['id']}").status_code == 403
    assert Client().get("/api/v1/lists").status_code == 401


def test_a_retried_create_with_its_key_makes_one_list(api_as: Any, shopper: Any) -> None:
    client = api_as(shopper)
    first = client.post("/api/v1/lists", {"title": "一次"}, headers={"Idempotency-Key": "k1"})
    again = client.post("/api/v1/lists", {"title": "一次"}, headers={"Idempotency-Key": "k1"})
    assert first.json() == again.json()
    assert FollowList.objects.count() == 1
    other = client.post("/api/v1/lists", {"title": "另一个"}, headers={"Idempotency-Key": "k1"})
    assert _code(other) == (422, "idempotency_mismatch")
    assert FollowList.objects.count() == 1
