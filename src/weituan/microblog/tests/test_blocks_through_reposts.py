"""A block (and, for reading, a mute) holds through someone else's repost: the blocked person cannot
forward, like or comment on a repost of the blocker's post, and reads the repost without the original,
in the API (the Quote entity says why, plain reposts leave the account's list) and on the post page."""

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
from weituan.microblog.services.relations import block_create, follow_create, mute_create

HTMX = {"HTTP_HX_REQUEST": "true"}
UNAVAILABLE = "你无法查看这条微博。"


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


@pytest.mark.django_db
def test_a_quote_read_across_a_block_or_mute_says_why_and_shows_nothing_of_the_original(api_as: Any) -> None:
    world = _world()
    quote_id, hop_id, original = world["quote"].id, world["hop"].id, world["original"]
    expected = {"troll": "unauthorized", "grudge": "blocked_account", "hush": "muted_account"}
    for name, state in expected.items():
        seen = api_as(world[name]).get(f"/api/v1/statuses/{quote_id}")
        assert seen.status_code == 200
        assert seen.json()["quote"] == {"state": state, "quoted_status": None}
        assert "牛肉面" not in seen.content.decode()
        # The plain repost forwards nothing else: it nests nothing, and says why as a quote would.
        plain = api_as(world[name]).get(f"/api/v1/statuses/{hop_id}").json()
        assert (plain["reblog"], plain["quote"]) == (None, {"state": state, "quoted_status": None})
        # Read after the hidden ones, the same statuses still show the original to others.
        shown = api_as(world["reader"]).get(f"/api/v1/statuses/{quote_id}").json()["quote"]
        assert (shown["state"], shown["quoted_status"]["content"]) == ("accepted", "<p>牛肉面买一送一</p>")
        reblog = api_as(world["reader"]).get(f"/api/v1/statuses/{hop_id}").json()
        assert (reblog["reblog"]["id"], reblog["quote"]) == (str(original.id), None)

    block_create(blocker=world["troll"], blocked_id=world["shop"].pk)  # blocked both ways: the stronger
    seen = api_as(world["troll"]).get(f"/api/v1/statuses/{quote_id}").json()["quote"]
    assert seen == {"state": "unauthorized", "quoted_status": None}


@pytest.mark.django_db
def test_an_accounts_statuses_leave_out_plain_reposts_of_hidden_authors(api_as: Any) -> None:
    world = _world()
    fan, quote, hop = world["fan"], world["quote"], world["hop"]
    for name in ("troll", "grudge", "hush"):
        seen = api_as(world[name]).get(f"/api/v1/accounts/{fan.pk}/statuses").json()
        assert [status["id"] for status in seen] == [str(quote.id)]
        assert seen[0]["quote"]["quoted_status"] is None
    seen = api_as(world["reader"]).get(f"/api/v1/accounts/{fan.pk}/statuses").json()
    assert [status["id"] for status in seen] == [str(quote.id), str(hop.id)]
    assert seen[0]["quote"]["quoted_status"]["id"] == str(world["original"].id)
    assert seen[1]["reblog"]["id"] == str(world["original"].id)


@pytest.mark.django_db
def test_hidden_and_shown_readers_share_timelines_without_one_seeing_the_others(api_as: Any) -> None:
    world = _world()
    quote, original = world["quote"], world["original"]
    for name in ("troll", "reader"):
        follow_create(follower=world[name], followee_id=world["fan"].pk)
    mention = repost_create(reposter=world["fan"], post_id=original.id, comment="@troll @reader 来吃面")
    # Each reads the home and public timelines (kept renderings, shared by readers) in turn.
    for _round in range(2):
        for name in ("troll", "reader"):
            client = api_as(world[name])
            home = client.get("/api/v1/timelines/home").json()
            public = client.get("/api/v1/timelines/public").json()
            if name == "troll":
                assert [status["id"] for status in home + public] == []
            else:
                assert [status["id"] for status in home] == [
                    str(mention.id),
                    str(quote.id),
                    str(world["hop"].id),
                ]
                assert [status["quote"]["state"] for status in public[:2]] == ["accepted", "accepted"]
                assert public[1]["quote"]["quoted_status"]["id"] == str(original.id)
            note = client.get("/api/v1/notifications", {"types[]": "mention"}).json()[0]["status"]
            state = "unauthorized" if name == "troll" else "accepted"
            assert (note["id"], note["quote"]["state"]) == (str(mention.id), state)
            assert (note["quote"]["quoted_status"] is None) == (name == "troll")


@pytest.mark.django_db
def test_the_post_page_shows_the_repost_without_a_hidden_original(client: Any) -> None:
    world = _world()
    quote, hop = world["quote"], world["hop"]
    for name in ("troll", "grudge", "hush"):
        client.force_login(world[name])
        for post in (quote, hop):
            body = client.get(f"/p/{post.id}").content.decode()
            origin = body[body.index('class="post-origin"') :]
            assert UNAVAILABLE in origin and "牛肉面" not in body
        profile = client.get("/@fan").content.decode()
        assert f'id="post-{quote.id}"' in profile and f'id="post-{hop.id}"' not in profile
        assert "牛肉面" not in profile
    client.force_login(world["reader"])
    body = client.get(f"/p/{quote.id}").content.decode()
    assert "牛肉面买一送一" in body and UNAVAILABLE not in body
    client.logout()
    assert "牛肉面买一送一" in client.get(f"/p/{hop.id}").content.decode()
    # The refused actions of the card answer with the block's message, and change nothing.
    client.force_login(world["troll"])
    answer = client.post(f"/p/{hop.id}/repost", {"comment": ""}, **HTMX)
    assert answer.status_code == 403 and "你无法与该账号互动。" in answer.content.decode()
    assert _counts(world["original"])[0] == 2


def _client(live_server: Any, user: Any) -> Mastodon:
    raw, _ = access_token_issue(user=user)
    return Mastodon(access_token=raw, api_base_url=live_server.url, version_check_mode="none")


@pytest.mark.django_db(transaction=True)
def test_a_mastodon_client_is_refused_and_reads_the_quote_as_unauthorized(live_server: Any) -> None:
    world = _world()
    troll, reader = _client(live_server, world["troll"]), _client(live_server, world["reader"])
    with pytest.raises(MastodonAPIError) as refused:
        troll.status_reblog(world["hop"].id)
    assert refused.value.args[1] == 403
    assert Post.objects.get(id=world["original"].id).reposts_count == 2

    seen = troll.status(world["quote"].id)
    assert (seen.quote.state, seen.quote.quoted_status) == ("unauthorized", None)
    assert [int(status.id) for status in troll.account_statuses(world["fan"].pk)] == [world["quote"].id]
    shown = reader.status(world["quote"].id)
    assert (shown.quote.state, int(shown.quote.quoted_status.id)) == ("accepted", world["original"].id)
    assert [int(status.id) for status in reader.account_statuses(world["fan"].pk)] == [
        world["quote"].id,
        world["hop"].id,
    ]
