"""Outbound links in posts: each URL gets its own short link when the post is written, posts render it
as /s/<code> showing the destination, and a click through it is counted under that destination."""

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from weituan.microblog.queries import post_links as post_links_queries
from weituan.microblog.services.interactions import comment_create
from weituan.microblog.services.posts import post_create, post_publish, repost_create
from weituan.microblog.text import extract_urls, link_display, render_html, tokenize
from weituan.tracking.buffer import write_buffer
from weituan.tracking.models import ShortLink
from weituan.tracking.store import analytics_store
from weituan.tracking.tests.conftest import store  # noqa: F401 - an empty analytics store per test

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
TAOBAO = "https://item.taobao.com/item.htm?id=612345678901&spm=a21wu"
DIANPING = "http://www.dianping.com/shop/H3x9"
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def links_of(post_id: int) -> dict[str, tuple[str, str, int | None]]:
    rows = ShortLink.objects.filter(post_id=post_id).values_list("target_url", "code", "channel", "sharer_id")
    return {url: (code, channel, sharer) for url, code, channel, sharer in rows}


def test_each_url_of_a_post_gets_its_own_outbound_link_and_the_status_links_to_it(
    api_as: Any, shopper: Any
) -> None:
    text = f"双十一好价 {TAOBAO} 还有店 {DIANPING}，再贴一次 {TAOBAO}"
    response = api_as(shopper).post("/api/v1/statuses", {"status": text})
    assert response.status_code == 200, response.content
    status = response.json()
    post_id = int(status["id"])
    links = links_of(post_id)
    assert set(links) == {TAOBAO, DIANPING}  # the same URL twice is one link
    assert {(channel, sharer) for _, channel, sharer in links.values()} == {("outbound", shopper.pk)}
    taobao, dianping = links[TAOBAO][0], links[DIANPING][0]
    assert taobao != dianping and len(taobao) == 8 and taobao.isalnum()
    content = status["content"]
    assert content.count(f'href="http://testserver/s/{taobao}"') == 2
    assert f'href="http://testserver/s/{dianping}"' in content
    assert 'title="http://www.dianping.com/shop/H3x9"' in content
    assert ">dianping.com/shop/H3x9</a>" in content  # the destination, without scheme and www.
    assert ">item.taobao.com/item.htm?id=6…</a>" in content  # cut at 30 characters
    assert 'href="https://item.taobao.com' not in content and 'href="http://www.dianping' not in content
    # A later read renders the same links.
    again = api_as(shopper).get(f"/api/v1/statuses/{post_id}").json()
    assert again["content"] == content


def test_a_post_without_a_url_makes_no_link_and_no_statement_for_one(shopper: Any) -> None:
    post_create(author=shopper, text="第一条 #双十一#")
    with CaptureQueriesContext(connection) as captured:
        post_publish(author=shopper, text="第二条 #双十一# 没有链接")
    assert not any("tracking_shortlink" in query["sql"] for query in captured.captured_queries)
    assert ShortLink.objects.count() == 0


def test_a_post_with_urls_makes_its_links_in_one_insert(shopper: Any) -> None:
    post_create(author=shopper, text="第一条")
    with CaptureQueriesContext(connection) as captured:
        published = post_publish(author=shopper, text=f"看 {TAOBAO} 和 {DIANPING}")
    inserts = [query["sql"] for query in captured.captured_queries if "tracking_shortlink" in query["sql"]]
    assert len(inserts) == 1 and inserts[0].startswith("INSERT")
    assert set(links_of(published.post.id)) == {TAOBAO, DIANPING}


def test_the_weighted_length_still_counts_a_url_as_23(shopper: Any, settings: Any) -> None:
    settings.POST_MAX_WEIGHTED_LENGTH = 30
    post = post_create(author=shopper, text="看看 https://example.com/" + "x" * 200)  # 4 + 1 + 23
    assert list(links_of(post.id)) == ["https://example.com/" + "x" * 200]


def test_a_click_through_the_post_link_is_counted_under_its_destination(api_as: Any, shopper: Any) -> None:
    status = api_as(shopper).post("/api/v1/statuses", {"status": f"好价 {TAOBAO}"}).json()
    link = ShortLink.objects.get(post_id=int(status["id"]))
    response = Client().get(f"/s/{link.code}", HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == TAOBAO  # a third-party page gets no parameter of ours
    write_buffer().flush()
    rows = analytics_store().query(
        "SELECT event, url, link_id, is_bot, post_id, sharer_id FROM events WHERE event = 'link_click'", {}
    )
    assert rows == [
        {
            "event": "link_click",
            "url": TAOBAO,
            "link_id": link.id,
            "is_bot": 0,
            "post_id": int(status["id"]),  # the post the link was in, and its author
            "sharer_id": shopper.id,
        }
    ]


def test_reposts_and_comments_with_urls_get_their_own_links(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    original = post_create(author=merchant, text="新店开张")
    hop1 = repost_create(reposter=shopper, post_id=original.id, comment=f"详情 {DIANPING}")
    hop2 = repost_create(reposter=outsider, post_id=hop1.id, comment=f"比价 {TAOBAO}")
    plain = repost_create(reposter=merchant, post_id=hop1.id)
    comment = comment_create(author=outsider, post_id=original.id, text=f"地址在这 {DIANPING}")
    assert links_of(original.id) == {}
    assert list(links_of(hop1.id)) == [DIANPING]
    # The chain carries hop 1's URL: the hop where a reader taps it has its own link to it.
    assert hop2.text == f"比价 {TAOBAO}//@alice: 详情 {DIANPING}"
    assert set(links_of(hop2.id)) == {TAOBAO, DIANPING}
    assert links_of(hop2.id)[DIANPING][0] != links_of(hop1.id)[DIANPING][0]
    assert set(links_of(plain.id)) == {DIANPING}  # its text is hop 1's chain
    assert list(links_of(comment.id)) == [DIANPING]
    assert links_of(comment.id)[DIANPING][2] == outsider.pk


def test_links_to_the_site_itself_are_not_outbound(shopper: Any, settings: Any) -> None:
    own = [f"{settings.SITE_URL}/s/Ab3xYz9Q", f"{settings.SITE_URL}/deals/7/"]
    post = post_create(author=shopper, text=f"我的分享 {own[0]} 团购 {own[1]} 和 {TAOBAO}")
    assert list(links_of(post.id)) == [TAOBAO]
    html = render_html(post.text, short_links=dict(post_links_queries.post_short_links(post.id, post.text)))
    assert f'<a href="{own[0]}"' in html and f'<a href="{own[1]}"' in html


def test_the_web_post_card_links_to_the_short_link(shopper: Any, merchant: Any) -> None:
    post = post_create(author=merchant, text=f"到店有礼 {DIANPING}")
    comment = comment_create(author=shopper, post_id=post.id, text=f"同去 {TAOBAO}")
    client = Client()
    client.force_login(shopper)
    page = client.get(f"/p/{post.id}").content.decode()
    code = links_of(post.id)[DIANPING][0]
    assert (
        f'<a href="/s/{code}" title="{DIANPING}" rel="nofollow noopener noreferrer" target="_blank">' in page
    )
    assert f'href="{DIANPING}"' not in page
    comments = client.get(f"/p/{post.id}/comments").content.decode()
    assert f'href="/s/{links_of(comment.id)[TAOBAO][0]}"' in comments


def test_a_taken_code_is_drawn_again(shopper: Any, monkeypatch: Any) -> None:
    taken = post_create(author=shopper, text=f"先占一个 {DIANPING}")
    taken_code = links_of(taken.id)[DIANPING][0]
    codes = iter([taken_code, "Fresh0001", "Fresh0002"])
    monkeypatch.setattr("weituan.tracking.services.outbound_links.short_code_new", lambda: next(codes))
    post = post_create(author=shopper, text=f"再来 {TAOBAO}")
    assert links_of(post.id)[TAOBAO][0] == "Fresh0001"
    assert links_of(taken.id)[DIANPING][0] == taken_code  # the older link is untouched


@pytest.mark.postgres
def test_the_one_statement_publish_makes_the_links_and_draws_a_taken_code_again(
    shopper: Any, settings: Any, monkeypatch: Any
) -> None:
    settings.TASKS = DATABASE_TASKS
    post_create(author=shopper, text="第一条")
    taken = post_create(author=shopper, text=f"先占一个 {DIANPING}")
    taken_code = links_of(taken.id)[DIANPING][0]
    with CaptureQueriesContext(connection) as captured:
        published = post_publish(author=shopper, text=f"一条语句 #好价# {TAOBAO}")
    assert len(captured.captured_queries) == 1  # the post, its task, index, counters, topic and links
    assert list(links_of(published.post.id)) == [TAOBAO]
    codes = iter([taken_code, "Fresh0003"])
    monkeypatch.setattr("weituan.tracking.services.outbound_links.short_code_new", lambda: next(codes))
    clashed = post_publish(author=shopper, text=f"撞码 {DIANPING}")
    assert links_of(clashed.post.id) == {DIANPING: ("Fresh0003", "outbound", shopper.pk)}
    kept = post_links_queries.post_short_links(clashed.post.id, clashed.post.text)
    assert kept == ((DIANPING, "Fresh0003"),)


def test_link_display_shows_host_and_path_cut_with_an_ellipsis() -> None:
    assert link_display("https://www.Example.com/a") == "Example.com/a"
    assert link_display("HTTP://t.cn/abc") == "t.cn/abc"
    assert link_display("https://shop.example/" + "路" * 40) == "shop.example/" + "路" * 16 + "…"


def test_rendering_escapes_the_destination_it_shows() -> None:
    url = "https://x.example/?q=<b>&a=1"
    html = render_html(f"看 {url}", short_links={"https://x.example/?q=": "Ab3xYz9Q"})
    assert '<a href="/s/Ab3xYz9Q" title="https://x.example/?q="' in html
    assert "<b>" not in html
    tricky = 'https://x.example/"onmouseover="alert(1)'
    html = render_html(tricky, short_links={"https://x.example/": "Ab3xYz9Q"})
    assert html == (
        '<p><a href="/s/Ab3xYz9Q" title="https://x.example/" rel="nofollow noopener noreferrer"'
        ' target="_blank">x.example/</a>&quot;onmouseover=&quot;alert(1)</p>'
    )


def test_links_are_looked_up_once_per_page_of_statuses(api_as: Any, shopper: Any, merchant: Any) -> None:
    ids = [
        int(api_as(merchant).post("/api/v1/statuses", {"status": f"第{n}家 {TAOBAO}&n={n}"}).json()["id"])
        for n in range(3)
    ]
    post_links_queries._KEPT.clear()  # as in another process, which has kept nothing
    with CaptureQueriesContext(connection) as captured:
        response = api_as(shopper).get(f"/api/v1/accounts/{merchant.pk}/statuses")
    assert response.status_code == 200
    assert [int(status["id"]) for status in response.json()] == ids[::-1]
    lookups = [query for query in captured.captured_queries if "tracking_shortlink" in query["sql"]]
    assert len(lookups) == 1
    for status, post_id in zip(response.json(), ids[::-1], strict=True):
        assert f"/s/{next(iter(links_of(post_id).values()))[0]}" in status["content"]
    assert not any('href="https://item.taobao.com' in status["content"] for status in response.json())


def test_a_chain_right_after_a_link_is_not_part_of_it() -> None:
    text = "比价 https://a.cn/x.//@alice: 详情 http://b.cn/y"
    assert extract_urls(text) == ["https://a.cn/x", "http://b.cn/y"]
    assert [token.kind for token in tokenize(text)] == ["text", "url", "text", "mention", "text", "url"]
    assert "".join(token.raw for token in tokenize(text)) == text


def test_links_made_after_the_post_leave_no_kept_rendering_with_the_plain_url(shopper: Any) -> None:
    from weituan.microblog.queries.versions import post_versions
    from weituan.microblog.services.post_links import post_links_statement, post_links_written

    post = post_create(author=shopper, text="没有链接")  # written without links: stands for a lost insert
    post.text = f"好价 {TAOBAO}"
    links = post_links_statement(post)
    assert links is not None
    before = post_versions([post.id], shopper.pk).versions[post.id]
    post_links_written(post, links, inserted=0)  # the one-statement insert wrote none of them
    assert ShortLink.objects.filter(post_id=post.id, target_url=TAOBAO).count() == 1
    assert post_versions([post.id], shopper.pk).versions[post.id] != before
