"""Muted words (屏蔽关键词) in the pages: the settings page adds and removes words, in Chinese and
English; home, topic and profile pages fold a post behind a warning word and leave a hidden one out."""

from typing import Any

import pytest

from weituan.microblog.models import FilterKeyword, KeywordFilter
from weituan.microblog.services.filters import filter_create
from weituan.microblog.services.posts import post_create, repost_create
from weituan.microblog.services.relations import follow_create

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_a_word_is_added_and_removed_on_the_settings_page(client: Any, shopper: Any) -> None:
    client.force_login(shopper)
    page = client.get("/settings/filters").content.decode()
    assert "<h1>屏蔽关键词</h1>" in page and "还没有屏蔽关键词。" in page
    assert 'href="/settings/filters"' in page  # the menu's entry
    added = client.post(
        "/settings/filters/add",
        {"keyword": " 剧透 ", "context": ["home", "public"], "filter_action": "warn", "whole_word": "1"},
        **HTMX,
    )
    assert added.status_code == 200
    body = added.content.decode()
    assert '<strong class="keyword">剧透</strong>' in body and "首页 · 广场和话题 · 折叠" in body
    row = KeywordFilter.objects.get()
    assert (row.owner_id, row.title, row.context, row.filter_action) == (
        shopper.pk,
        "剧透",
        "home,public",
        "warn",
    )
    # Without JavaScript: a plain form post, back to the page with a message.
    plain = client.post(
        "/settings/filters/add", {"keyword": "广告", "context": ["home"], "filter_action": "hide"}
    )
    assert plain.status_code == 302 and plain["Location"] == "/settings/filters"
    page = client.get("/settings/filters").content.decode()
    assert "已屏蔽「广告」。" in page and "首页 · 不显示" in page
    removed = client.post(f"/settings/filters/{row.id}/remove", **HTMX)
    assert '<strong class="keyword">剧透</strong>' not in removed.content.decode()
    assert list(KeywordFilter.objects.values_list("title", flat=True)) == ["广告"]


@pytest.mark.django_db
def test_a_refused_word_says_why_and_writes_nothing(client: Any, shopper: Any, outsider: Any) -> None:
    client.force_login(shopper)
    empty = client.post("/settings/filters/add", {"keyword": "  ", "context": ["home"]}, **HTMX)
    assert empty.status_code == 422 and "请先输入要屏蔽的词。" in empty.content.decode()
    nowhere = client.post("/settings/filters/add", {"keyword": "剧透"}, **HTMX)
    assert nowhere.status_code == 422 and "请至少选择一个屏蔽范围。" in nowhere.content.decode()
    odd = client.post(
        "/settings/filters/add", {"keyword": "剧透", "context": ["home"], "filter_action": "burn"}, **HTMX
    )
    assert odd.status_code == 422
    assert not KeywordFilter.objects.exists() and not FilterKeyword.objects.exists()
    theirs = filter_create(owner=outsider, title="x", contexts=["home"], keywords=[("x", True)])
    gone = client.post(f"/settings/filters/{theirs.id}/remove", **HTMX)
    assert gone.status_code == 404 and KeywordFilter.objects.filter(id=theirs.id).exists()
    assert client.get("/settings/filters", HTTP_ACCEPT_LANGUAGE="en").status_code == 200


@pytest.mark.django_db
def test_the_page_is_in_english_too(client: Any, shopper: Any) -> None:
    client.force_login(shopper)
    client.cookies["django_language"] = "en"
    filter_create(
        owner=shopper, title="spoiler", contexts=["home"], action="hide", keywords=[("spoiler", True)]
    )
    page = client.get("/settings/filters").content.decode()
    assert "<h1>Muted words</h1>" in page and "Home timeline · left out" in page


@pytest.mark.django_db
def test_timelines_fold_warned_posts_and_leave_hidden_ones_out(
    client: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=merchant.pk)
    follow_create(follower=shopper, followee_id=outsider.pk)
    spoiler = post_create(author=merchant, text="大结局剧透 #追剧#")
    ad = post_create(author=merchant, text="Big SALE #追剧#")
    plain = repost_create(reposter=outsider, post_id=spoiler.id)
    other = post_create(author=merchant, text="今天天气不错 #追剧#")
    filter_create(owner=shopper, title="剧透", contexts=["home", "public"], keywords=[("剧透", True)])
    filter_create(
        owner=shopper, title="ads", contexts=["home", "account"], action="hide", keywords=[("sale", True)]
    )
    client.force_login(shopper)
    home = client.get("/").content.decode()
    folded = f'<details class="post-filtered" id="filtered-{spoiler.id}"><summary>已按关键词「剧透」折叠 — 显示</summary>'
    assert folded in home
    assert f'id="filtered-{plain.id}"' in home  # a plain repost folds on its original's words
    assert f'id="post-{ad.id}"' not in home
    assert f'id="post-{other.id}"' in home and f'id="filtered-{other.id}"' not in home

    topic = client.get("/topics/追剧").content.decode()
    assert f'id="filtered-{spoiler.id}"' in topic and f'id="post-{ad.id}"' in topic  # ads hide on home only
    profile = client.get(f"/@{merchant.username}").content.decode()
    assert f'id="post-{ad.id}"' not in profile and f'id="filtered-{spoiler.id}"' not in profile
    client.cookies["django_language"] = "en"
    english = client.get("/").content.decode()
    assert "Folded for the keyword “剧透” — show" in english
    # Someone without filters sees everything unfolded.
    client.force_login(outsider)
    theirs = client.get(f"/@{merchant.username}").content.decode()
    assert "post-filtered" not in theirs and f'id="post-{ad.id}"' in theirs


@pytest.mark.django_db
def test_the_original_a_quote_shows_is_filtered_on_its_own(
    client: Any, shopper: Any, merchant: Any, outsider: Any
) -> None:
    follow_create(follower=shopper, followee_id=outsider.pk)
    spoiler = post_create(author=merchant, text="大结局剧透：凶手是管家")
    ad = post_create(author=merchant, text="Big SALE today")
    warned = repost_create(reposter=outsider, post_id=spoiler.id, comment="别看评论区")
    hidden = repost_create(reposter=outsider, post_id=ad.id, comment="我也想买")
    filter_create(owner=shopper, title="剧透", contexts=["home"], keywords=[("剧透", True)])
    filter_create(owner=shopper, title="ads", contexts=["home"], action="hide", keywords=[("sale", True)])
    client.force_login(shopper)
    home = client.get("/").content.decode()
    # The quotes themselves say nothing filtered: shown, and not folded.
    assert f'id="post-{warned.id}"' in home and f'id="filtered-{warned.id}"' not in home
    assert f'id="post-{hidden.id}"' in home and "我也想买" in home
    # The warned original is folded inside its quote; the hidden one is left out of its quote.
    fold = home.index(f'<details class="post-filtered" id="filtered-origin-{warned.id}">')
    assert "已按关键词「剧透」折叠 — 显示" in home[fold:] and home.index("凶手是管家") > fold
    assert "Big SALE today" not in home and "被引用的微博已被你的屏蔽关键词隐藏。" in home
    # Someone without filters sees both originals in their quotes.
    client.force_login(outsider)
    theirs = client.get(f"/@{outsider.username}").content.decode()
    assert "凶手是管家" in theirs and "Big SALE today" in theirs and "post-filtered" not in theirs
