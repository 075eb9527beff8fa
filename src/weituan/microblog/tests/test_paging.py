"""The one id-paging helper every micro-blog list uses: max_id, since_id and min_id as Mastodon means them."""

from typing import Any

import pytest

from weituan.microblog.models import Post
from weituan.microblog.queries.paging import id_page
from weituan.microblog.services.posts import post_create

pytestmark = pytest.mark.django_db


def test_max_since_and_min_id(merchant: Any) -> None:
    ids = [post_create(author=merchant, text=f"第{n}条").id for n in range(6)]
    rows = Post.objects.values_list("id", flat=True)

    def page(**bounds: Any) -> list[int]:
        params = {"max_id": None, "since_id": None, "min_id": None, "limit": 2, **bounds}
        return id_page(rows, **params)

    assert page() == [ids[5], ids[4]]
    assert page(max_id=ids[4]) == [ids[3], ids[2]]
    # since_id gives the newest above it; min_id the ones just above it, still newest first.
    assert page(since_id=ids[1]) == [ids[5], ids[4]]
    assert page(min_id=ids[1]) == [ids[3], ids[2]]
    assert page(min_id=ids[1], max_id=ids[3]) == [ids[2]]
    assert page(max_id=ids[0]) == []
    # The rows may be any values of the queryset; paging still goes by id.
    comments = Post.objects.filter(author=merchant).values_list("text", flat=True)
    assert id_page(comments, max_id=ids[2], since_id=None, min_id=None, limit=5, field="id") == [
        "第1条",
        "第0条",
    ]
