"""Pinning one's own posts (置顶): what may be pinned, the limit, and the limit held under concurrent pins."""

import threading

import pytest
from django.db import connection

from weituan.accounts.models import User
from weituan.core.errors import NotFound, ValidationFailed
from weituan.microblog.models import Pin
from weituan.microblog.queries.pins import pinned_post_ids
from weituan.microblog.services.pins import PINS_MAX, pin_add, pin_remove
from weituan.microblog.services.posts import post_create, post_delete


@pytest.mark.django_db
def test_pins_are_the_authors_newest_first_and_deleted_posts_drop_out(shopper: User, merchant: User) -> None:
    first, second = post_create(author=merchant, text="一"), post_create(author=merchant, text="二")
    assert pin_add(user=merchant, post_id=second.id) is True
    assert pin_add(user=merchant, post_id=first.id) is True
    assert pin_add(user=merchant, post_id=first.id) is False
    assert pinned_post_ids(merchant.pk, shopper) == [first.id, second.id]
    assert pinned_post_ids(merchant.pk, None) == [first.id, second.id]
    post_delete(actor=merchant, post_id=first.id)
    assert pinned_post_ids(merchant.pk, shopper) == [second.id]
    with pytest.raises(NotFound):
        pin_remove(user=shopper, post_id=second.id)  # not theirs to unpin
    assert pin_remove(user=merchant, post_id=second.id) is True
    assert pin_remove(user=merchant, post_id=second.id) is False


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_pins_never_pass_the_limit() -> None:
    author = User.objects.create(username="pinning_shop")
    posts = [post_create(author=author, text=f"公告 {n}") for n in range(PINS_MAX * 3)]
    start = threading.Barrier(len(posts))
    refused: list[str] = []
    errors: list[BaseException] = []

    def pin(post_id: int) -> None:
        try:
            start.wait()
            pin_add(user=author, post_id=post_id)
        except ValidationFailed as refusal:
            refused.append(refusal.code)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pin, args=(post.id,)) for post in posts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Pin.objects.filter(user=author).count() == PINS_MAX
    assert refused == ["pin_limit"] * (len(posts) - PINS_MAX)
