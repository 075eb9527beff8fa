"""The rules around quotes that go through a repost: blocks and policies of the original, who may take a
quote back, and what a reader is told about quoting a quote."""

import json
from typing import Any

import pytest

from weituan.core.errors import NotFound, PermissionDenied
from weituan.core.testing import make_user
from weituan.microblog.models import Post, Visibility
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.quotes import quote_policy_set, quote_revoke
from weituan.microblog.services.relations import block_create, follow_create

pytestmark = pytest.mark.django_db


def test_a_blocked_person_cannot_quote_the_original_through_someone_elses_repost() -> None:
    shop, fan, blocked = make_user("shop"), make_user("fan"), make_user("troll")
    original = post_create(author=shop, text="开业大吉")
    block_create(blocker=shop, blocked_id=blocked.pk)
    hop = repost_create(reposter=fan, post_id=original.id)
    with pytest.raises(PermissionDenied) as refused:
        repost_create(reposter=blocked, post_id=hop.id, comment="呵呵")
    assert refused.value.code == "blocked"
    assert Post.objects.get(id=original.id).quotes_count == 0
    with pytest.raises(PermissionDenied) as refused:  # nor forward it plainly, though fan did not block
        repost_create(reposter=blocked, post_id=hop.id)
    assert refused.value.code == "blocked"
    assert Post.objects.get(id=original.id).reposts_count == 1


def test_only_the_originals_author_takes_back_a_quote_and_only_one_they_can_see(api_as: Any) -> None:
    shop, fan, other = make_user("shop"), make_user("fan"), make_user("other")
    original = post_create(author=shop, text="新品")
    middle = repost_create(reposter=fan, post_id=original.id, comment="好看")
    deeper = repost_create(reposter=other, post_id=middle.id, comment="同感")
    with pytest.raises(NotFound):  # the middle hop's author: the quote shows the original, not theirs
        quote_revoke(actor=fan, post_id=middle.id, quoting_id=deeper.id)
    assert Post.objects.get(id=original.id).quotes_count == 2

    followers_only = repost_create(
        reposter=other, post_id=original.id, comment="只给粉丝看", visibility=Visibility.PRIVATE
    )
    answer = api_as(shop).post(f"/api/v1/statuses/{original.id}/quotes/{followers_only.id}/revoke")
    assert answer.status_code == 404 and answer.json()["code"] == "not_a_quote"
    assert Post.objects.get(id=followers_only.id).quote_revoked_at is None  # nothing was written

    block_create(blocker=shop, blocked_id=other.pk)  # a block does not stop the quoted author
    answer = api_as(shop).post(f"/api/v1/statuses/{original.id}/quotes/{deeper.id}/revoke")
    assert answer.status_code == 200 and answer.json()["quote"]["state"] == "revoked"
    assert Post.objects.get(id=original.id).quotes_count == 2  # the middle one and the private one


def test_a_reader_is_told_they_may_not_quote_a_quote_whose_original_forbids_it(api_as: Any) -> None:
    shop, fan, reader = make_user("shop"), make_user("fan"), make_user("reader")
    original = post_create(author=shop, text="限量款")
    quote = repost_create(reposter=fan, post_id=original.id, comment="抢到了")
    seen = api_as(reader).get(f"/api/v1/statuses/{quote.id}").json()["quote_approval"]
    assert seen == {"automatic": ["public"], "manual": [], "current_user": "automatic"}

    quote_policy_set(actor=shop, post_id=original.id, policy="followers")
    seen = api_as(reader).get(f"/api/v1/statuses/{quote.id}").json()
    assert seen["quote_approval"]["automatic"] == ["public"]  # the quote's own policy
    assert seen["quote_approval"]["current_user"] == "denied"  # but the original's is on the way
    assert seen["weituan"]["quote_requires"] == [{"account_id": str(shop.pk), "policy": "followers"}]
    refused = api_as(reader).post("/api/v1/statuses", {"status": "我也要", "quoted_status_id": str(quote.id)})
    assert refused.status_code == 403 and refused.json()["code"] == "quote_not_allowed"

    follow_create(follower=reader, followee_id=shop.pk)
    assert api_as(reader).get(f"/api/v1/statuses/{quote.id}").json()["quote_approval"]["current_user"] == (
        "automatic"
    )
    made = api_as(reader).post("/api/v1/statuses", {"status": "我也要", "quoted_status_id": str(quote.id)})
    assert made.status_code == 200, made.content
    home = {status["id"]: status for status in api_as(fan).get("/api/v1/timelines/home").json()}
    assert home[str(quote.id)]["quote_approval"]["current_user"] == "denied"  # fan follows nobody


def test_a_json_body_sets_the_default_policy_as_a_form_does(api_as: Any) -> None:
    shop = make_user("shop")
    answer = api_as(shop).patch(
        "/api/v1/accounts/update_credentials",
        data=json.dumps({"source": {"quote_policy": "followers", "language": "zh"}}),
        content_type="application/json",
    )
    assert answer.status_code == 200
    assert answer.json()["source"]["quote_policy"] == "followers"
    shop.refresh_from_db()
    # source[language] is the default language of new posts, not the language the site is read in.
    assert (shop.quote_policy, shop.default_language, shop.locale) == ("followers", "zh", "")


def test_the_originals_author_hears_of_a_quote_made_deep_in_the_tree(api_as: Any) -> None:
    shop, fan, friend = make_user("shop"), make_user("fan"), make_user("friend")
    original = post_create(author=shop, text="周末特价")
    hop = repost_create(reposter=fan, post_id=original.id)
    plain = repost_create(reposter=friend, post_id=hop.id)
    quote = repost_create(reposter=friend, post_id=hop.id, comment="一起去 @shop")
    seen = api_as(shop).get("/api/v1/notifications").json()
    # The forward of their post by fan, and friend's quote (once, though it also mentions them); the
    # plain forward of fan's hop is fan's news, not theirs.
    assert [(item["type"], item["account"]["username"], item["status"]["id"]) for item in seen] == [
        ("quote", "friend", str(quote.id)),
        ("reblog", "fan", str(original.id)),
    ]
    assert seen[0]["status"]["quote"]["quoted_status"]["id"] == str(original.id)
    kinds = [(item["type"], item["status"]["id"]) for item in api_as(fan).get("/api/v1/notifications").json()]
    assert kinds == [("quote", str(quote.id)), ("reblog", str(hop.id))]
    del plain
