"""Quotes: a repost that carries a comment of its own, counted on its root and its parent, and exposed as
Mastodon's `quotes_count`."""

import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from weituan.accounts.models import User
from weituan.core.errors import NotFound
from weituan.microblog.models import Post
from weituan.microblog.services.posts import post_create, post_delete, repost_create

pytestmark = pytest.mark.django_db


def counters(post: Post) -> tuple[int, int]:
    post.refresh_from_db()
    return post.reposts_count, post.quotes_count


def test_only_reposts_with_their_own_comment_are_quotes(
    shopper: User, merchant: User, outsider: User
) -> None:
    root = post_create(author=merchant, text="新店开业")
    plain = repost_create(reposter=shopper, post_id=root.id)
    quote = repost_create(reposter=outsider, post_id=root.id, comment="去过，好吃")
    hop = repost_create(reposter=shopper, post_id=quote.id, comment="同意")
    plain_hop = repost_create(reposter=merchant, post_id=quote.id)
    assert counters(root) == (4, 2)  # the root counts its whole tree
    assert counters(quote) == (2, 1)  # a repost counts what was made directly of it
    assert counters(plain) == (0, 0) and counters(hop) == (0, 0)

    # Deleting takes the count back once, however often it is tried.
    post_delete(actor=shopper, post_id=hop.id)
    with pytest.raises(NotFound) as again:
        post_delete(actor=shopper, post_id=hop.id)
    assert again.value.code == "post_deleted"
    post_delete(actor=merchant, post_id=plain_hop.id)
    assert counters(root) == (2, 1)
    assert counters(quote) == (0, 0)


def test_the_api_reports_quotes_count(shopper: User, merchant: User, api_as: Any) -> None:
    root = post_create(author=merchant, text="团购")
    client = api_as(shopper)
    made = client.post("/api/v1/statuses", {"status": "一起拼", "quoted_status_id": str(root.id)})
    assert made.status_code == 200 and made.json()["quote"]["quoted_status"]["id"] == str(root.id)
    client.post(f"/api/v1/statuses/{root.id}/reblog")
    body = Client().get(f"/api/v1/statuses/{root.id}").json()
    assert (body["reblogs_count"], body["quotes_count"]) == (2, 1)


def test_the_post_page_shows_how_many_reposts_carry_a_comment(
    client: Client, shopper: User, merchant: User, outsider: User
) -> None:
    root = post_create(author=merchant, text="热卖")
    repost_create(reposter=shopper, post_id=root.id, comment="买了")
    repost_create(reposter=outsider, post_id=root.id)
    for language, words in (("en", "1 with a comment"), ("zh-hans", "其中 1 条带评论")):
        page = client.get(f"/p/{root.id}", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        section = page[page.index('id="reposts-section"') :]
        heading = section[: section.index("</h2>")]
        assert '<span class="muted small">2</span>' in heading and words in heading


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_quotes_count_stays_exact_under_concurrent_quotes_and_deletes() -> None:
    author = User.objects.create(username="quoted_shop")
    people = User.objects.bulk_create([User(username=f"quoter_{index:02d}") for index in range(20)])
    root = post_create(author=author, text="被引用")
    start = threading.Barrier(len(people))
    errors: list[BaseException] = []

    def act(index: int, person: User) -> None:
        try:
            start.wait()
            quote = repost_create(reposter=person, post_id=root.id, comment=f"引用{index}")
            repost_create(reposter=person, post_id=root.id)
            if index % 4 == 0:
                post_delete(actor=person, post_id=quote.id)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=act, args=(i, person)) for i, person in enumerate(people)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    live_quotes = Post.objects.filter(root=root, deleted_at__isnull=True).exclude(comment="").count()
    assert live_quotes == 15
    assert counters(root) == (35, 15)
