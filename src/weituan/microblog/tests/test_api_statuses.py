"""The Mastodon statuses API through the Django test client: shapes, Weibo mapping, errors, idempotency."""

import json
from types import SimpleNamespace

import pytest

from weituan.core import ratelimit
from weituan.microblog.models import Block, Post
from weituan.microblog.services.posts import post_create, repost_create


def post_json(client, path, data=None, **headers):
    return client.post(path, data=json.dumps(data or {}), content_type="application/json", **headers)


@pytest.fixture
def original(merchant):
    return post_create(author=merchant, text="#团购# 火锅 99 元 @alice https://shop.example/d/1")


def test_posting_returns_a_mastodon_status(api_as, shopper, merchant):
    response = api_as(shopper).post(
        "/api/v1/statuses", {"status": "你好 @meituan_shop #话题#", "visibility": "public"}
    )
    assert response.status_code == 200, response.content
    status = response.json()
    post = Post.objects.get(id=int(status["id"]))
    assert status["id"] == str(post.id)
    assert status["account"]["username"] == "alice"
    assert status["content"].startswith('<p>你好 <span class="h-card">')
    assert status["mentions"] == [
        {
            "id": str(merchant.pk),
            "username": "meituan_shop",
            "acct": "meituan_shop",
            "url": "http://testserver/@meituan_shop",
        }
    ]
    assert status["tags"] == [{"name": "话题", "url": "http://testserver/topics/%E8%AF%9D%E9%A2%98"}]
    assert (status["reblog"], status["quote"], status["in_reply_to_id"], status["card"]) == (
        None,
        None,
        None,
        None,
    )
    assert (status["reblogs_count"], status["favourites_count"], status["replies_count"]) == (0, 0, 0)
    assert status["url"] == f"http://testserver/@alice/{post.id}"
    assert status["weituan"] == {
        "kind": "original",
        "comment": None,
        "chain": [],
        "parent_id": None,
        "root_id": None,
        "depth": 0,
        "deal_id": None,
        "quote_requires": [],  # anyone may quote it
    }


def test_script_in_a_post_comes_back_escaped(api_as, shopper):
    status = api_as(shopper).post("/api/v1/statuses", {"status": "<script>alert(1)</script>"}).json()
    assert status["content"] == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_bad_posts_get_a_clear_4xx_and_nothing_is_written(api_as, shopper, settings):
    client = api_as(shopper)
    empty = client.post("/api/v1/statuses", {"status": "  "})
    assert (empty.status_code, empty.json()["code"]) == (422, "empty_post")
    settings.POST_MAX_WEIGHTED_LENGTH = 10
    long = client.post("/api/v1/statuses", {"status": "微" * 6})
    assert (long.status_code, long.json()["code"]) == (422, "post_too_long")
    assert "12" in long.json()["error"]
    unknown = client.post("/api/v1/statuses", {"status": "hi", "in_reply_to_id": "123"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    junk = client.post("/api/v1/statuses", {"status": "hi", "quoted_status_id": "abc"})
    assert (junk.status_code, junk.json()["code"]) == (422, "invalid_id")
    assert Post.objects.count() == 0


def test_invalid_and_missing_tokens_are_401(client, original):
    bad = client.post("/api/v1/statuses", {"status": "x"}, HTTP_AUTHORIZATION="Bearer nope")
    assert (bad.status_code, bad.json()["code"]) == (401, "invalid_token")
    missing = client.post("/api/v1/statuses", {"status": "x"})
    assert missing.status_code == 401
    assert client.get(f"/api/v1/statuses/{original.id}").status_code == 200  # reading is public


def test_in_reply_to_makes_a_comment(api_as, shopper, merchant, original):
    status = (
        api_as(shopper)
        .post("/api/v1/statuses", {"status": "想买", "in_reply_to_id": str(original.id)})
        .json()
    )
    assert (status["in_reply_to_id"], status["in_reply_to_account_id"]) == (
        str(original.id),
        str(merchant.pk),
    )
    assert status["weituan"]["kind"] == "comment"
    context = api_as(merchant).get(f"/api/v1/statuses/{original.id}/context").json()
    assert [item["id"] for item in context["descendants"]] == [status["id"]]
    assert api_as(merchant).get(f"/api/v1/statuses/{original.id}").json()["replies_count"] == 1


def test_quoted_status_id_makes_a_repost_with_comment(api_as, shopper, outsider, original):
    first = (
        api_as(shopper)
        .post("/api/v1/statuses", {"status": "冲", "quoted_status_id": str(original.id)})
        .json()
    )
    assert first["quote"]["state"] == "accepted"
    assert first["quote"]["quoted_status"]["id"] == str(original.id)
    assert first["reblog"] is None
    second = (
        api_as(outsider).post("/api/v1/statuses", {"status": "同去", "quoted_status_id": first["id"]}).json()
    )
    assert "同去//" in second["content"] and "@<span>alice</span></a></span>: 冲" in second["content"]
    assert second["quote"]["quoted_status"]["id"] == str(original.id)  # Weibo embeds the original
    extras = second["weituan"]
    assert (extras["parent_id"], extras["root_id"], extras["depth"], extras["comment"]) == (
        first["id"],
        str(original.id),
        2,
        "同去",
    )
    assert extras["chain"] == [
        {
            "post_id": first["id"],
            "account_id": str(shopper.pk),
            "username": "alice",
            "comment": "冲",
            "deleted": False,
        }
    ]
    assert api_as(outsider).get(f"/api/v1/statuses/{original.id}").json()["reblogs_count"] == 2


def test_reblog_nests_the_original_and_is_idempotent(api_as, shopper, original):
    client = api_as(shopper)
    wrapper = client.post(f"/api/v1/statuses/{original.id}/reblog").json()
    assert wrapper["reblog"]["id"] == str(original.id)
    assert wrapper["reblog"]["reblogged"] is True
    assert wrapper["reblog"]["reblogs_count"] == 1
    assert wrapper["content"] == ""
    again = client.post(f"/api/v1/statuses/{original.id}/reblog").json()
    assert again["id"] == wrapper["id"]
    undone = client.post(f"/api/v1/statuses/{original.id}/unreblog").json()
    assert (undone["id"], undone["reblogged"], undone["reblogs_count"]) == (str(original.id), False, 0)


def test_reblog_of_a_commented_repost_nests_that_repost(api_as, shopper, outsider, original):
    commented = repost_create(reposter=shopper, post_id=original.id, comment="好价")
    wrapper = api_as(outsider).post(f"/api/v1/statuses/{commented.id}/reblog").json()
    assert wrapper["reblog"]["id"] == str(commented.id)
    assert wrapper["reblog"]["quote"]["quoted_status"]["id"] == str(original.id)
    assert wrapper["weituan"]["depth"] == 2


def test_reblogging_deleted_or_blocked_posts_is_refused(api_as, shopper, merchant, original):
    Block.objects.create(blocker=merchant, blocked=shopper)
    blocked = api_as(shopper).post(f"/api/v1/statuses/{original.id}/reblog")
    assert (blocked.status_code, blocked.json()["code"]) == (403, "blocked")
    Block.objects.all().delete()
    api_as(merchant).delete(f"/api/v1/statuses/{original.id}")
    gone = api_as(shopper).post(f"/api/v1/statuses/{original.id}/reblog")
    assert (gone.status_code, gone.json()["code"]) == (404, "post_deleted")
    assert Post.objects.filter(kind="repost").count() == 0


def test_favourite_and_lists_of_who(api_as, shopper, outsider, original):
    liked = api_as(shopper).post(f"/api/v1/statuses/{original.id}/favourite").json()
    assert (liked["favourited"], liked["favourites_count"]) == (True, 1)
    api_as(outsider).post(f"/api/v1/statuses/{original.id}/favourite")
    api_as(outsider).post(f"/api/v1/statuses/{original.id}/reblog")
    who = api_as(shopper).get(f"/api/v1/statuses/{original.id}/favourited_by?limit=1")
    assert [account["username"] for account in who.json()] == ["charlie"]
    assert 'rel="next"' in who["Link"]
    assert [
        a["username"] for a in api_as(shopper).get(f"/api/v1/statuses/{original.id}/reblogged_by").json()
    ] == ["charlie"]
    unliked = api_as(shopper).post(f"/api/v1/statuses/{original.id}/unfavourite").json()
    assert (unliked["favourited"], unliked["favourites_count"]) == (False, 1)


def test_delete_returns_the_source_and_then_404(api_as, shopper, outsider):
    post = post_create(author=shopper, text="删掉我")
    forbidden = api_as(outsider).delete(f"/api/v1/statuses/{post.id}")
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "not_author")
    deleted = api_as(shopper).delete(f"/api/v1/statuses/{post.id}")
    assert (deleted.status_code, deleted.json()["text"]) == (200, "删掉我")
    gone = api_as(shopper).get(f"/api/v1/statuses/{post.id}")
    assert (gone.status_code, gone.json()["code"]) == (404, "not_found")


def test_a_blocked_viewer_gets_404(api_as, shopper, merchant, original):
    Block.objects.create(blocker=merchant, blocked=shopper)
    response = api_as(shopper).get(f"/api/v1/statuses/{original.id}")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_idempotency_key_replays_and_refuses_a_different_body(api_as, shopper):
    client = api_as(shopper)
    first = client.post("/api/v1/statuses", {"status": "一次"}, HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post("/api/v1/statuses", {"status": "一次"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.json()["id"] == second.json()["id"]
    other = client.post("/api/v1/statuses", {"status": "两次"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_mismatch")
    assert Post.objects.count() == 1
    # A failed first attempt leaves the key free for the retry.
    failed = client.post("/api/v1/statuses", {"status": ""}, HTTP_IDEMPOTENCY_KEY="k2")
    assert failed.status_code == 422
    assert client.post("/api/v1/statuses", {"status": "ok"}, HTTP_IDEMPOTENCY_KEY="k2").status_code == 200


def test_writes_are_rate_limited(api_as, shopper, settings):
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 2
    client = api_as(shopper)
    assert client.post("/api/v1/statuses", {"status": "1"}).status_code == 200
    assert client.post("/api/v1/statuses", {"status": "2"}).status_code == 200
    limited = client.post("/api/v1/statuses", {"status": "3"})
    assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert Post.objects.count() == 2


def test_likes_and_reposts_count_against_the_write_limit(api_as, shopper, original, settings, monkeypatch):
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 2
    # All of it in one window of the limit, wherever the minute's edge falls.
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))
    client = api_as(shopper)
    assert client.post(f"/api/v1/statuses/{original.id}/favourite").status_code == 200
    assert client.post(f"/api/v1/statuses/{original.id}/reblog").status_code == 200
    for action in ("unreblog", "unfavourite", "bookmark"):
        limited = client.post(f"/api/v1/statuses/{original.id}/{action}")
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    still = Post.objects.filter(author=shopper, parent=original, deleted_at=None)
    assert still.count() == 1  # the repost was not undone
    assert client.get(f"/api/v1/statuses/{original.id}").json()["favourited"] is True


def test_a_refused_status_counts_against_the_limit_and_the_limit_is_said_first(api_as, shopper, settings):
    # The request is read and checked before its write waits its turn, yet counted as a write refused
    # inside it is: a refused body still spends the budget, and once it is spent the answer is the
    # limit, whatever else is wrong with the body.
    settings.RATE_LIMIT_WRITES_PER_MINUTE = 2
    client = api_as(shopper)
    too_long = client.post("/api/v1/statuses", {"status": "长" * 141})
    assert (too_long.status_code, too_long.json()["code"]) == (422, "post_too_long")
    assert client.post("/api/v1/statuses", {"status": "1"}).status_code == 200
    for body in ({"status": "长" * 141}, {"status": "2"}):
        limited = client.post("/api/v1/statuses", body)
        assert (limited.status_code, limited.json()["code"]) == (429, "rate_limited")
    assert Post.objects.count() == 1


def test_json_bodies_work_too(api_as, shopper):
    response = post_json(api_as(shopper), "/api/v1/statuses", {"status": "json", "visibility": "unlisted"})
    assert (response.status_code, response.json()["visibility"]) == (200, "unlisted")


def test_repost_tree_and_chain_endpoints(api_as, shopper, outsider, original):
    first = repost_create(reposter=shopper, post_id=original.id, comment="A")
    second = repost_create(reposter=outsider, post_id=first.id, comment="B")
    tree = api_as(shopper).get(f"/api/v1/weituan/posts/{original.id}/tree").json()
    assert (tree["size"], tree["max_depth"], tree["root_id"]) == (2, 2, str(original.id))
    assert [(n["id"], n["parent_id"], n["depth"], n["account"]["username"]) for n in tree["nodes"]] == [
        (str(original.id), None, 0, "meituan_shop"),
        (str(first.id), str(original.id), 1, "alice"),
        (str(second.id), str(first.id), 2, "charlie"),
    ]
    chain = api_as(shopper).get(f"/api/v1/weituan/posts/{second.id}/chain").json()
    assert [(hop["username"], hop["comment"]) for hop in chain["hops"]] == [
        ("charlie", "B"),
        ("alice", "A"),
        ("meituan_shop", original.text),
    ]
    missing = api_as(shopper).get("/api/v1/weituan/posts/1/tree")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_comments_endpoint_pages(api_as, shopper, original):
    client = api_as(shopper)
    ids = [
        client.post("/api/v1/statuses", {"status": f"c{i}", "in_reply_to_id": str(original.id)}).json()["id"]
        for i in range(3)
    ]
    page = client.get(f"/api/v1/weituan/posts/{original.id}/comments?limit=2")
    assert [item["id"] for item in page.json()] == [ids[2], ids[1]]
    assert f"max_id={ids[1]}" in page["Link"]
