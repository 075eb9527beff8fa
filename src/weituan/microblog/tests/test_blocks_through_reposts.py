"""A block holds through someone else's repost: the blocked person cannot forward, like or comment on a
repost of the blocker's post."""

from typing import Any

import pytest
from mastodon import Mastodon
from mastodon.errors import MastodonAPIError

from weituan.accounts.tokens import access_token_issue
from weituan.core.errors import PermissionDenied
from weituan.core.testing import make_user
from weituan.microblog.models import Like, Notification, Post
from weituan.microblog.services.interactions import comment_create, like_add
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import block_create, mute_create

HTMX = {"HTTP_HX_REQUEST": "true"}


def _world() -> dict[str, Any]:
    """A shop's post, fan's plain repost and quote of it, a comment under the repost; troll is blocked
    by the shop, grudge blocked the shop, hush muted it, and reader has no quarrel with anyone."""
    shop, fan = make_user("noodle_shop"), make_user("fan")
    troll, grudge, hush, reader = (
        make_user("troll"),
        make_user("grudge"),
        make_user("hush"),
        make_user("reader"),
    )
    original = post_create(author=shop, text="牛肉面买一送一")
    hop = repost_create(reposter=fan, post_id=original.id)
    quote = repost_create(reposter=fan, post_id=original.id, comment="这家面好吃")
    remark = comment_create(author=fan, post_id=hop.id, text="同意")
    block_create(blocker=shop, blocked_id=troll.pk)
    block_create(blocker=grudge, blocked_id=shop.pk)
    mute_create(muter=hush, muted_id=shop.pk)
    return {
        **{"shop": shop, "fan": fan, "troll": troll, "grudge": grudge, "hush": hush, "reader": reader},
        **{"original": original, "hop": hop, "quote": quote, "remark": remark},
    }


def _counts(post: Post) -> tuple[int, int, int, int]:
    post.refresh_from_db()
    return post.reposts_count, post.quotes_count, post.likes_count, post.comments_count


@pytest.mark.django_db
def test_neither_side_of_a_block_can_forward_like_or_comment_through_anothers_repost() -> None:
    world = _world()
    original, hop, quote, remark = world["original"], world["hop"], world["quote"], world["remark"]
    before = {post.id: _counts(post) for post in (original, hop, quote, remark)}
    notes = Notification.objects.count()
    attempts = [
        lambda actor: repost_create(reposter=actor, post_id=hop.id),
        lambda actor: repost_create(reposter=actor, post_id=hop.id, comment="哈哈"),
        lambda actor: repost_create(reposter=actor, post_id=quote.id),
        lambda actor: like_add(user=actor, post_id=hop.id),
        lambda actor: like_add(user=actor, post_id=remark.id),  # a comment under the repost
        lambda actor: comment_create(author=actor, post_id=quote.id, text="路过"),
        lambda actor: comment_create(author=actor, post_id=remark.id, text="回复"),
    ]
    for actor in (world["troll"], world["grudge"]):
        for attempt in attempts:
            with pytest.raises(PermissionDenied) as refused:
                attempt(actor)
            assert (refused.value.code, refused.value.status) == ("blocked", 403)
    assert {post.id: _counts(post) for post in (original, hop, quote, remark)} == before
    assert Post.objects.filter(author__in=[world["troll"], world["grudge"]]).count() == 0
    assert Like.objects.count() == 0
    assert Notification.objects.count() == notes

    # A mute hides; it does not refuse. And someone with no block forwards the repost as before.
    assert repost_create(reposter=world["hush"], post_id=hop.id).root_id == original.id
    assert like_add(user=world["reader"], post_id=hop.id) is True
    assert _counts(original)[0] == before[original.id][0] + 1


@pytest.mark.django_db
def test_the_api_refuses_writes_through_the_repost_with_the_blocked_code(api_as: Any) -> None:
    world = _world()
    hop, original = world["hop"], world["original"]
    troll = api_as(world["troll"])
    answers = [
        troll.post(f"/api/v1/statuses/{hop.id}/reblog"),
        troll.post(f"/api/v1/statuses/{hop.id}/favourite"),
        troll.post("/api/v1/statuses", {"status": "哈哈", "quoted_status_id": str(hop.id)}),
        troll.post("/api/v1/statuses", {"status": "路过", "in_reply_to_id": str(world["quote"].id)}),
    ]
    assert [(answer.status_code, answer.json()["code"]) for answer in answers] == [(403, "blocked")] * 4
    assert _counts(original)[:2] == (2, 1)
    assert not Notification.objects.filter(actor=world["troll"]).exists()


def _client(live_server: Any, user: Any) -> Mastodon:
    raw, _ = access_token_issue(user=user)
    return Mastodon(access_token=raw, api_base_url=live_server.url, version_check_mode="none")


@pytest.mark.django_db(transaction=True)
def test_a_mastodon_client_is_refused_a_reblog_through_the_repost(live_server: Any) -> None:
    world = _world()
    troll = _client(live_server, world["troll"])
    with pytest.raises(MastodonAPIError) as refused:
        troll.status_reblog(world["hop"].id)
    assert refused.value.args[1] == 403
    assert Post.objects.get(id=world["original"].id).reposts_count == 2
