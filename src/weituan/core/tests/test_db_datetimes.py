"""Datetimes written into hot statements as the backend itself would adapt them, and compared in the
database as Django's own queries compare them."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import override_settings

from weituan.core.rows import db_datetimes, fetch_rows
from weituan.microblog.models import Post
from weituan.microblog.services.posts import post_create

MOMENTS = [
    datetime(2026, 12, 6, 7, 5, 6, 123456, tzinfo=UTC),
    datetime(2026, 12, 6, 7, 5, 6, tzinfo=UTC),  # no microseconds: written without a fraction
    datetime(2026, 12, 6, 15, 5, 6, 7, tzinfo=ZoneInfo("Asia/Shanghai")),
    datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5))),
]


def test_each_moment_is_the_parameter_the_backend_makes_of_it() -> None:
    assert db_datetimes(MOMENTS) == [connection.ops.adapt_datetimefield_value(moment) for moment in MOMENTS]


@pytest.mark.django_db
def test_a_statement_compares_them_with_stored_times_as_the_orm_does(merchant: Any) -> None:
    post = post_create(author=merchant, text="几点了")
    table = connection.ops.quote_name(Post._meta.db_table)
    for moment in (
        post.created_at - timedelta(microseconds=1),
        post.created_at,
        post.created_at + timedelta(hours=8),
    ):
        (after,) = db_datetimes([moment])
        rows = fetch_rows(f"SELECT id FROM {table} WHERE created_at > %s", [after])
        expected = list(Post.objects.filter(created_at__gt=moment).values_list("id", flat=True))
        assert [row[0] for row in rows] == expected, moment


def test_a_change_of_settings_is_followed() -> None:
    naive = datetime(2026, 12, 6, 7, 5, 6, 123456)
    db_datetimes(MOMENTS[:1])  # the decision for the usual settings is made, and kept
    with override_settings(USE_TZ=False):
        assert db_datetimes([naive]) == [connection.ops.adapt_datetimefield_value(naive)]
    assert db_datetimes(MOMENTS) == [connection.ops.adapt_datetimefield_value(moment) for moment in MOMENTS]
