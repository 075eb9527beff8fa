"""The Mastodon timeline endpoints: home (fixed query count), public, tag, and an account's statuses."""

from typing import Any

import pytest
from django.test import Client

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import make_user
from weituan.mastodon.home_statuses import home_statuses_clear
from weituan.microblog.timelines.queries import home_timeline_ids

pytestmark = pytest.mark.django_db


def test_home_timeline_pages_with_link_header(api_as: Any, shopper: Any, merchant: Any, post_as: Any) -> None:
    client = api_as(shopper)
    client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    assert client.get("/api/v1/timelines/home").json() == []
    ids = [post_as(merchant, f"团购 {index}").id for index in range(5)][::-1]
    first = client.get("/api/v1/timelines/home?limit=2")
    assert [row["id"] for row in first.json()] == [str(ids[0]), str(ids[1])]
    assert first.json()[0]["account"]["id"] == str(merchant.pk)
    links = dict(
        (part.split(";")[1].strip(), part.split(";")[0].strip().strip("<>"))
        for part in first["Link"].split(", ")
    )
    assert f"max_id={ids[1]}" in links['rel="next"']
    assert f"min_id={ids[0]}" in links['rel="prev"']
    second = client.get(links['rel="next"'])
    assert [row["id"] for row in second.json()] == [str(ids[2]), str(ids[3])]
    since = client.get(f"/api/v1/timelines/home?since_id={ids[2]}")
    assert [row["id"] for row in since.json()] == [str(ids[0]), str(ids[1])]
    assert client.get("/api/v1/timelines/home?limit=0").status_code == 422
    assert client.get("/api/v1/timelines/home?max_id=x").json()["code"] == "invalid_cursor"
    assert Client().get("/api/v1/timelines/home").status_code == 401


def test_link_header_keeps_other_parameters_and_replaces_the_cursor(
    api_as: Any, shopper: Any, merchant: Any, post_as: Any
) -> None:
    client = api_as(shopper)
    client.post(f"/api/v1/accounts/{merchant.pk}/follow")
    ids = [post_as(merchant, f"团购 {index}").id for index in range(4)][::-1]
    page = client.get(f"/api/v1/timelines/home?limit=2&max_id={ids[0] + 1}&x=a%20b%26c&x=%E5%9B%A2")
    base = "http://testserver/api/v1/timelines/home?limit=2&x=a+b%26c&x=%E5%9B%A2"
    assert page["Link"] == (f'<{base}&max_id={ids[1]}>; rel="next", <{base}&min_id={ids[0]}>; rel="prev"')
    alone = client.get(f"/api/v1/timelines/home?since_id={ids[3]}")
    assert alone["Link"] == (
        f'<http://testserver/api/v1/timelines/home?max_id={ids[2]}>; rel="next", '
        f'<http://testserver/api/v1/timelines/home?min_id={ids[0]}>; rel="prev"'
    )


def test_home_timeline_query_count_is_fixed(
    backend: str,
    api_as: Any,
    shopper: Any,
    follow: Any,
    post_as: Any,
    repost_as: Any,
    django_assert_num_queries: Any,
) -> None:
    authors = [make_user(f"author{index}") for index in range(4)]
    for author in authors:
        follow(shopper, author)
    home_timeline_ids(shopper.pk)
    originals = [post_as(authors[index % 4], f"post {index}") for index in range(30)]
    for index in range(15):
        repost_as(authors[(index + 1) % 4], originals[index], f"转 {index}")
    client = api_as(shopper)
    client.get("/api/v1/timelines/home")  # warm: timeline state stamped
    # Token; state with hidden and merged authors; the timeline (a query, or a Redis call); the page's
    # row versions with the viewer's flags; the rows of the statuses not yet rendered; their images,
    # mentions and topics.
    warm = 4 if backend == "db" else 3
    fresh = warm + 4
    home_statuses_clear()
    with django_assert_num_queries(fresh):
        small = client.get("/api/v1/timelines/home?limit=20")
    home_statuses_clear()
    with django_assert_num_queries(fresh):
        large = client.get("/api/v1/timelines/home?limit=40")
    assert (len(small.json()), len(large.json())) == (20, 40)
    # Read again with every status already rendered: only the versions, no rows, images, mentions or topics.
    with django_assert_num_queries(warm):
        again = client.get("/api/v1/timelines/home?limit=40")
    assert again.content == large.content


def test_public_and_tag_timelines(api_as: Any, shopper: Any, merchant: Any, post_as: Any) -> None:
    tagged = post_as(merchant, "今天 #双十一# 开抢")
    other = post_as(shopper, "hello")
    anonymous = Client()
    public = anonymous.get("/api/v1/timelines/public?local=true")
    assert [row["id"] for row in public.json()] == [str(other.id), str(tagged.id)]
    assert anonymous.get("/api/v1/timelines/public?remote=true").json() == []
    tag = anonymous.get("/api/v1/timelines/tag/双十一")
    assert [row["id"] for row in tag.json()] == [str(tagged.id)]
    api_as(shopper).post(f"/api/v1/accounts/{merchant.pk}/block")
    mine = api_as(shopper).get("/api/v1/timelines/public").json()
    assert [row["id"] for row in mine] == [str(other.id)]


def test_public_and_tag_timelines_take_a_token_only_with_the_read_scope(
    shopper: Any, merchant: Any, post_as: Any
) -> None:
    tagged = post_as(merchant, "今天 #双十一# 开抢")
    for scopes, expected in [("read", 200), ("read:statuses", 200), ("write", 403), ("read:accounts", 403)]:
        raw, _ = access_token_issue(user=shopper, scopes=scopes)
        client = Client(headers={"Authorization": f"Bearer {raw}"})
        for url in ("/api/v1/timelines/public", "/api/v1/timelines/tag/双十一"):
            response = client.get(url)
            assert response.status_code == expected, (scopes, url)
            if expected == 200:
                assert [row["id"] for row in response.json()] == [str(tagged.id)]
            else:
                assert response.json()["code"] == "insufficient_scope"
    anonymous = Client()
    assert anonymous.get("/api/v1/timelines/public").status_code == 200
    assert anonymous.get("/api/v1/timelines/tag/双十一").status_code == 200
    refused = Client(headers={"Authorization": "Bearer not-a-token"}).get("/api/v1/timelines/public")
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")


def test_account_statuses(api_as: Any, shopper: Any, merchant: Any, post_as: Any, repost_as: Any) -> None:
    post = post_as(merchant, "原创")
    forward = repost_as(shopper, post)
    own = post_as(shopper, "我的")
    anonymous = Client()
    every = anonymous.get(f"/api/v1/accounts/{shopper.pk}/statuses").json()
    assert [row["id"] for row in every] == [str(own.id), str(forward.id)]
    assert every[1]["reblog"]["id"] == str(post.id)
    originals = anonymous.get(f"/api/v1/accounts/{shopper.pk}/statuses?exclude_reblogs=true").json()
    assert [row["id"] for row in originals] == [str(own.id)]
    assert anonymous.get(f"/api/v1/accounts/{shopper.pk}/statuses?pinned=true").json() == []
    paged = anonymous.get(f"/api/v1/accounts/{shopper.pk}/statuses?max_id={own.id}").json()
    assert [row["id"] for row in paged] == [str(forward.id)]
    assert anonymous.get("/api/v1/accounts/987654321/statuses").status_code == 404


def test_a_fresh_home_page_reads_its_links_and_deals_once_however_many_posts(
    api_as: Any, shopper: Any, follow: Any, post_as: Any, run_on_commit: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from weituan.deals import facade as deals_facade
    from weituan.deals.tests.conftest import live_deal
    from weituan.microblog.queries import post_links

    shop = make_user("linkshop", merchant=True)
    follow(shopper, shop)
    home_timeline_ids(shopper.pk)
    client = api_as(shopper)

    def add_posts(first: int, last: int) -> None:
        for index in range(first, last):
            post_as(shop, f"好价 https://shop.example/item/{index}")
            with run_on_commit():
                live_deal(shop, title=f"团购 {index}")

    def fresh_read() -> tuple[int, int]:
        # As a process that has read none of them: nothing rendered, no links or deals kept.
        home_statuses_clear()
        post_links._KEPT.clear()
        deals_facade.deal_previews_clear()
        with CaptureQueriesContext(connection) as read:
            page = client.get("/api/v1/timelines/home?limit=40")
        assert page.status_code == 200
        cards = [status["card"] for status in page.json() if status["card"]]
        assert all("/s/" in status["content"] for status in page.json() if not status["card"])
        return len(page.json()) - len(cards), len(read.captured_queries)

    add_posts(0, 2)
    client.get("/api/v1/timelines/home")  # warm: timeline state stamped
    shown, few = fresh_read()
    assert shown == 2
    add_posts(2, 8)
    assert fresh_read() == (8, few)  # 16 posts render in as many statements as 4


def test_a_page_reads_the_accounts_its_authors_bios_name_once_and_a_bio_edit_shows_at_once(
    backend: str, api_as: Any, shopper: Any, follow: Any, post_as: Any, django_assert_num_queries: Any
) -> None:
    authors = [make_user(f"author{index}", bio=f"找我 @author{(index + 1) % 4} #团购") for index in range(4)]
    for author in authors:
        follow(shopper, author)
    home_timeline_ids(shopper.pk)
    for index in range(8):
        post_as(authors[index % 4], f"post {index}")
    client = api_as(shopper)
    client.get("/api/v1/timelines/home")  # warm: timeline state stamped
    # As test_home_timeline_query_count_is_fixed counts them, and one for the accounts the four bios name.
    warm = 4 if backend == "db" else 3
    home_statuses_clear()
    with django_assert_num_queries(warm + 4 + 1):
        page = client.get("/api/v1/timelines/home").json()
    notes = {row["account"]["username"]: row["account"]["note"] for row in page}
    assert notes["author0"] == (
        '<p>找我 <span class="h-card"><a href="http://testserver/@author1" class="u-url mention">'
        '@<span>author1</span></a></span> <a href="http://testserver/topics/%E5%9B%A2%E8%B4%AD"'
        ' class="mention hashtag" rel="tag">#团购</a></p>'
    )
    assert all('class="u-url mention"' in note for note in notes.values())
    # The statuses are kept rendered, and a bio edit still shows on the next read.
    api_as(authors[0]).patch(
        "/api/v1/accounts/update_credentials", {"note": "@nobody_here"}, content_type="application/json"
    )
    again = client.get("/api/v1/timelines/home").json()
    assert {row["account"]["note"] for row in again if row["account"]["username"] == "author0"} == {
        "<p>@nobody_here</p>"
    }
    public = Client().get("/api/v1/timelines/public?local=true").json()
    assert {row["account"]["username"]: row["account"]["note"] for row in public}["author1"] == (
        notes["author1"]
    )
