"""Full-text search over posts, on whichever database the suite runs against."""

from typing import Any

import pytest
from django.db import connection

from weituan.microblog.models import Block, Mute, Post, PostKind, Visibility
from weituan.microblog.search import facade, store
from weituan.microblog.search.queries import Page, posts_search

pytestmark = pytest.mark.django_db


def indexed_post(author: Any, text: str, **fields: Any) -> Post:
    post = Post.objects.create(author=author, text=text, **fields)
    facade.post_index(post_id=post.id)
    return post


def test_index_backend_matches_the_database() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                [store.TABLE, "document"],
            )
            assert cursor.fetchone() == ("tsvector",)
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [store.TABLE])
            assert any("gin" in row[0] for row in cursor.fetchall())
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [store.TABLE])
            (sql,) = cursor.fetchone()
            assert "fts5" in sql and "unicode61" in sql


def test_chinese_post_is_found_by_a_two_character_word_inside_it(shopper: Any, merchant: Any) -> None:
    deal = indexed_post(merchant, "今天的团购很划算，快来！")
    indexed_post(merchant, "明天见")

    assert posts_search(query="团购", viewer=shopper) == [deal.id]
    assert posts_search(query="划算", viewer=shopper) == [deal.id]
    assert posts_search(query="很划算", viewer=None) == [deal.id]
    assert posts_search(query="算", viewer=None) == [deal.id]  # a run's last character
    assert posts_search(query="团", viewer=None) == [deal.id]
    assert posts_search(query="购团", viewer=shopper) == []
    assert posts_search(query="明天 团购", viewer=shopper) == []


def test_phrase_needs_adjacent_characters(shopper: Any, merchant: Any) -> None:
    indexed_post(merchant, "很好的划算")
    assert posts_search(query="很划算", viewer=shopper) == []


def test_latin_words_match_case_insensitively(shopper: Any, merchant: Any) -> None:
    post = indexed_post(merchant, "Flash SALE on Noodles today")
    assert posts_search(query="sale", viewer=shopper) == [post.id]
    assert posts_search(query="NOODLES flash", viewer=shopper) == [post.id]
    assert posts_search(query="noodle", viewer=shopper) == []


def test_deleted_post_is_not_found(shopper: Any, merchant: Any) -> None:
    post = indexed_post(merchant, "团购结束了")
    assert posts_search(query="团购", viewer=shopper) == [post.id]

    Post.objects.filter(pk=post.id).update(deleted_at=post.created_at)
    # Even before the index row is dropped, the join on the live post hides it.
    assert posts_search(query="团购", viewer=shopper) == []
    facade.post_unindex(post_id=post.id)
    assert posts_search(query="团购", viewer=shopper) == []


def test_reindexing_a_deleted_post_drops_it(shopper: Any, merchant: Any) -> None:
    post = indexed_post(merchant, "团购结束了")
    Post.objects.filter(pk=post.id).update(deleted_at=post.created_at)
    facade.post_index(post_id=post.id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {store.TABLE}")
        assert cursor.fetchone() == (0,)


def test_blocked_and_muted_authors_are_left_out(shopper: Any, merchant: Any, outsider: Any) -> None:
    by_merchant = indexed_post(merchant, "团购 one")
    by_outsider = indexed_post(outsider, "团购 two")
    assert set(posts_search(query="团购", viewer=shopper)) == {by_merchant.id, by_outsider.id}

    Block.objects.create(blocker=outsider, blocked=shopper)  # they blocked the viewer
    assert posts_search(query="团购", viewer=shopper) == [by_merchant.id]
    Mute.objects.create(muter=shopper, muted=merchant)
    assert posts_search(query="团购", viewer=shopper) == []
    # Nobody else is affected.
    assert set(posts_search(query="团购", viewer=None)) == {by_merchant.id, by_outsider.id}


def test_private_posts_are_found_only_by_their_author(shopper: Any, merchant: Any) -> None:
    post = indexed_post(merchant, "团购 secret", visibility=Visibility.PRIVATE)
    assert posts_search(query="secret", viewer=shopper) == []
    assert posts_search(query="secret", viewer=None) == []
    assert posts_search(query="secret", viewer=merchant) == [post.id]


def test_repost_is_found_by_its_own_comment_only(shopper: Any, merchant: Any) -> None:
    root = indexed_post(merchant, "团购开始")
    repost = indexed_post(
        shopper,
        "买买买//@meituan_shop: 团购开始",
        kind=PostKind.REPOST,
        comment="买买买",
        parent=root,
        root=root,
        depth=1,
    )
    assert posts_search(query="团购", viewer=None) == [root.id]
    assert posts_search(query="买买", viewer=None) == [repost.id]


def test_better_match_ranks_first_and_pages_with_offset_and_max_id(shopper: Any, merchant: Any) -> None:
    weak = indexed_post(merchant, "团购 " + "其他内容 " * 20)
    strong = indexed_post(merchant, "团购 团购 团购")
    newer = indexed_post(merchant, "团购 团购 团购")
    assert posts_search(query="团购", viewer=shopper) == [newer.id, strong.id, weak.id]
    assert posts_search(query="团购", viewer=shopper, page=Page(limit=1, offset=1)) == [strong.id]
    assert posts_search(query="团购", viewer=shopper, page=Page(max_id=newer.id)) == [strong.id, weak.id]
    assert posts_search(query="团购", viewer=shopper, page=Page(min_id=strong.id)) == [newer.id]


def test_text_with_search_syntax_is_treated_as_words(shopper: Any, merchant: Any) -> None:
    post = indexed_post(merchant, "deal AND NOT near")
    assert posts_search(query='"deal" AND NOT* (near)', viewer=shopper) == [post.id]
    assert posts_search(query="'; DROP TABLE x; --", viewer=shopper) == []


def test_search_within_one_account(shopper: Any, merchant: Any) -> None:
    mine = indexed_post(shopper, "团购 mine")
    indexed_post(merchant, "团购 theirs")
    assert posts_search(query="团购", viewer=None, author_id=shopper.pk) == [mine.id]


def test_only_the_newest_matches_are_ranked_and_max_id_reaches_older_ones(
    shopper: Any, merchant: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr("weituan.microblog.search.queries.CANDIDATES", 2)
    oldest = indexed_post(merchant, "团购 团购 团购 团购")
    middle = indexed_post(merchant, "团购 and more words here")
    newest = indexed_post(merchant, "团购 团购")
    assert posts_search(query="团购", viewer=shopper) == [newest.id, middle.id]
    assert posts_search(query="团购", viewer=shopper, page=Page(max_id=middle.id)) == [oldest.id]
