"""A post's version changes with anything a rendered status shows of it, however the change is written,
and only then; on SQLite also after a migration has rebuilt a table (see `microblog.row_versions`)."""

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from weituan.accounts.models import User
from weituan.microblog.models import AccountStats, MediaAttachment, Post
from weituan.microblog.queries.posts import viewer_flags
from weituan.microblog.queries.versions import PostVersions, post_versions
from weituan.microblog.row_versions import COLUMN, versioned_tables
from weituan.microblog.services.interactions import bookmark_add, like_add
from weituan.microblog.services.pins import pin_add
from weituan.microblog.services.posts import post_create, repost_create


def _fingerprints(versions: PostVersions) -> dict[int, Any]:
    return {post_id: versions.fingerprint(post_id) for post_id in versions.asked}


def _raw_update(sql_table: str, assignment: str, key: str, value: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{sql_table}" SET {assignment} WHERE {key} = %s', [value])


@pytest.mark.django_db
def test_every_kind_of_write_to_what_a_status_shows_gives_a_new_version(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    original = post_create(author=merchant, text="今天开抢")
    forward = repost_create(reposter=shopper, post_id=original.id, comment="冲")
    other = post_create(author=outsider, text="别的")
    ids = [forward.id, original.id, other.id]
    media = MediaAttachment.objects.create(
        owner=merchant, post=original, file="media/a.jpg", description="火锅"
    )

    changes = [
        ("a like (counter update)", lambda: like_add(user=outsider, post_id=original.id)),
        ("a queryset update", lambda: Post.objects.filter(pk=original.pk).update(comments_count=7)),
        (
            "raw SQL on the post",
            lambda: _raw_update(Post._meta.db_table, "quotes_count = 3", "id", original.id),
        ),
        ("the author's profile", lambda: User.objects.filter(pk=merchant.pk).update(display_name="旗舰店")),
        (
            "the author's counters",
            lambda: AccountStats.objects.filter(user_id=merchant.pk).update(followers_count=99),
        ),
        (
            "an image description",
            lambda: MediaAttachment.objects.filter(pk=media.pk).update(description="麻辣"),
        ),
        ("an image removed", lambda: MediaAttachment.objects.filter(pk=media.pk).delete()),
        (
            "an image attached",
            lambda: MediaAttachment.objects.create(owner=merchant, post=original, file="media/b.jpg"),
        ),
        (
            "raw SQL on an image",
            lambda: _raw_update(
                MediaAttachment._meta.db_table, "description = '锅底'", "post_id", original.id
            ),
        ),
    ]
    before = _fingerprints(post_versions(ids, shopper.pk))
    assert set(before) == set(ids)
    for what, change in changes:
        change()
        after = _fingerprints(post_versions(ids, shopper.pk))
        # The original changed, so did the repost that shows it; the unrelated post did not.
        assert after[original.id] != before[original.id], what
        assert after[forward.id] != before[forward.id], what
        assert after[other.id] == before[other.id], what
        assert post_versions(ids, shopper.pk).versions == post_versions(ids, shopper.pk).versions, what
        before = after


@pytest.mark.django_db(transaction=True)
def test_versions_survive_a_migration_that_rebuilds_the_tables(merchant: Any) -> None:
    post = post_create(author=merchant, text="重建")
    kept = post_versions([post.id], merchant.pk).versions[post.id]
    if connection.vendor == "sqlite":
        # What a migration altering these models does on SQLite: the table is made again from the
        # model, which knows nothing of the column or its triggers.
        with connection.schema_editor() as editor:
            for model in (Post, User, AccountStats, MediaAttachment):
                editor._remake_table(model)  # type: ignore[attr-defined]
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        for table in versioned_tables():
            columns = {
                column.name for column in connection.introspection.get_table_description(cursor, table)
            }
            # SQLite carries the column again; PostgreSQL has its own row versions and none is added.
            assert (COLUMN in columns) is (connection.vendor == "sqlite"), table
    before = post_versions([post.id], merchant.pk).versions[post.id]
    # A rebuilt table's rows get fresh versions: a rendering kept from before the rebuild is not reused.
    assert (before != kept) is (connection.vendor == "sqlite")
    Post.objects.filter(pk=post.pk).update(likes_count=5)
    assert post_versions([post.id], merchant.pk).versions[post.id] != before
    before = post_versions([post.id], merchant.pk).versions[post.id]
    AccountStats.objects.filter(user_id=merchant.pk).update(posts_count=42)
    assert post_versions([post.id], merchant.pk).versions[post.id] != before


@pytest.mark.django_db
def test_the_viewers_flags_on_the_page_and_on_the_older_posts_it_shows(
    shopper: Any, merchant: Any, outsider: Any
) -> None:
    # Older than every post asked for: reached only as the parent and root of a repost on the page.
    old = post_create(author=merchant, text="老帖")
    mine = post_create(author=shopper, text="我的")
    forward = repost_create(reposter=outsider, post_id=old.id)
    liked = post_create(author=merchant, text="新帖")
    plain = post_create(author=merchant, text="没人碰")
    like_add(user=shopper, post_id=old.id)
    like_add(user=shopper, post_id=liked.id)
    bookmark_add(user=shopper, post_id=old.id)
    pin_add(user=shopper, post_id=mine.id)
    pin_add(user=merchant, post_id=liked.id)
    repost_create(reposter=shopper, post_id=old.id)
    # Of the page's own posts: one reposted plainly, one quoted (a quote is not a reblog).
    repost_create(reposter=shopper, post_id=liked.id)
    repost_create(reposter=shopper, post_id=plain.id, comment="看看这个")

    versions = post_versions([forward.id, liked.id, plain.id, mine.id], shopper.pk)
    assert versions.asked == {forward.id, liked.id, plain.id, mine.id}
    assert versions.liked == {old.id, liked.id}
    assert versions.bookmarked == {old.id}
    assert versions.reposted == {old.id, liked.id}
    # Only one's own posts are pinned for one: the merchant's pin is theirs.
    assert versions.pinned == {mine.id}
    # Nothing of the page is kept by a viewer who kept nothing.
    other = post_versions([forward.id, liked.id, plain.id, mine.id], outsider.pk)
    assert (other.liked, other.bookmarked, other.pinned) == (set(), set(), set())
    assert other.reposted == {old.id}
    # The hydration's own flags read (when its rows carry none) agrees.
    page = [forward.id, liked.id, plain.id, mine.id, old.id]
    assert viewer_flags(page, shopper.pk) == ({old.id, liked.id}, {old.id, liked.id}, {old.id}, {mine.id})
