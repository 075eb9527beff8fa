"""Whole rows made into instances by `RowReader`: a row read again unchanged is a copy of the instance
made before, as loaded from the database and as `from_db` would make it."""

from typing import Any

import pytest

from weituan.accounts.models import User
from weituan.core.rows import RowReader, fetch_rows
from weituan.core.testing import make_user

pytestmark = pytest.mark.django_db


def _row_of(reader: RowReader[Any], user_id: int) -> tuple[Any, ...]:
    table = User._meta.db_table
    (row,) = fetch_rows(f"SELECT {reader.columns('u')} FROM {table} u WHERE u.id = %s", [user_id])
    return row


def _fields(user: User) -> dict[str, Any]:
    return {field.attname: getattr(user, field.attname) for field in User._meta.concrete_fields}


def test_a_row_read_again_unchanged_is_copied_from_the_instance_made_before() -> None:
    user = make_user("xiaolongbao", display_name="小笼包")
    User.objects.filter(pk=user.pk).update(profile_fields=[{"name": "店", "value": "南京路"}])
    reader = RowReader(User)
    first = reader.instance(_row_of(reader, user.pk))
    again = reader.instance(_row_of(reader, user.pk))
    assert first is not None and again is not None and first is not again
    assert _fields(again) == _fields(first) == _fields(User.objects.get(pk=user.pk))
    assert (again._state.adding, again._state.db) == (False, "default")
    # What one holder changes in place is its own: the JSON column's list is each copy's.
    again.profile_fields.append({"name": "营业", "value": "7-22"})
    again.display_name = "改了"
    third = reader.instance(_row_of(reader, user.pk))
    assert third is not None
    assert (third.display_name, third.profile_fields) == ("小笼包", [{"name": "店", "value": "南京路"}])
    # A copy saves as the instance it was copied from would.
    third.bio = "现包现蒸"
    third.save(update_fields=["bio"])
    assert User.objects.get(pk=user.pk).bio == "现包现蒸"


def test_a_changed_row_is_made_anew() -> None:
    user = make_user("carol")
    reader = RowReader(User)
    before = reader.instance(_row_of(reader, user.pk))
    User.objects.filter(pk=user.pk).update(bio="新简介", is_active=False)
    after = reader.instance(_row_of(reader, user.pk))
    assert before is not None and after is not None
    assert (before.bio, before.is_active) == ("", True)
    assert (after.bio, after.is_active) == ("新简介", False)


def test_the_rows_kept_are_bounded() -> None:
    reader = RowReader(User)
    reader.KEEP = 2
    users = [make_user(f"reader{index}") for index in range(4)]
    made = [reader.instance(_row_of(reader, user.pk)) for user in users]
    assert [user.pk for user in made if user is not None] == [user.pk for user in users]
    assert len(reader._made) == 2
    assert reader.instance((None,) * len(reader)) is None  # an outer join's miss
