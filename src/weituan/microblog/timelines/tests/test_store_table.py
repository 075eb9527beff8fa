"""The database store's table: entries kept in their key's order, read as one range of it."""

from typing import Any

import pytest
from django.db import connection

from weituan.microblog.timelines.models import TimelineEntry
from weituan.microblog.timelines.sqlite_table import entries_table_after_migrate, entries_table_has_rowid
from weituan.microblog.timelines.store import Bounds, DatabaseTimelineStore, Entry

pytestmark = pytest.mark.django_db

TABLE = TimelineEntry._meta.db_table


def test_entries_are_delivered_once_and_read_by_bounds() -> None:
    store = DatabaseTimelineStore()
    for post_id in (30, 10, 20, 40):
        store.deliver([7, 8], Entry(post_id, post_id + 1, post_id + 2))
    store.deliver([7], Entry(20, 21, 22))  # delivered again: nothing changes
    assert store.read(7, Bounds(), 3) == [Entry(40, 41, 42), Entry(30, 31, 32), Entry(20, 21, 22)]
    assert store.read(7, Bounds(upper=30, lower=10), 10) == [Entry(20, 21, 22)]
    # Just above `lower`, the oldest first, and given back newest first like any page.
    assert store.read(8, Bounds(lower=10, ascending=True), 2) == [Entry(30, 31, 32), Entry(20, 21, 22)]
    assert TimelineEntry.objects.filter(user_id=7).count() == 4


def test_many_posts_deliveries_are_written_a_few_rows_a_statement_and_commit(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    store = DatabaseTimelineStore()
    monkeypatch.setattr(DatabaseTimelineStore, "rows_per_commit", 3)
    monkeypatch.setattr(DatabaseTimelineStore, "trim_every", lambda self: 10**9)  # no trim due
    store.deliver([7], Entry(20, 21, 22))  # there already: left as it is
    deliveries = [([7, 8], Entry(20, 21, 22)), ([7], Entry(30, 31, 0)), ([], Entry(35, 36, 37)),
                  ([9, 8, 7], Entry(40, 41, 42))]  # fmt: skip
    # Six rows in two statements of three, each in its transaction (savepoints in the test's own).
    with django_assert_num_queries(6):
        assert store.deliver_many(deliveries) == [2, 1, 0, 3]
    assert store.read(7, Bounds(), 10) == [Entry(40, 41, 42), Entry(30, 31, 0), Entry(20, 21, 22)]
    assert store.read(8, Bounds(), 10) == [Entry(40, 41, 42), Entry(20, 21, 22)]
    assert store.read(9, Bounds(), 10) == [Entry(40, 41, 42)]
    assert store.deliver_many([]) == []


def test_deliveries_together_trim_the_timelines_due_as_one_at_a_time_does(settings: Any) -> None:
    settings.TIMELINE_CAP = 16  # a trim is due on one delivery in one
    store = DatabaseTimelineStore()
    store.deliver_many([([5], Entry(post_id, 1, 1)) for post_id in range(1, 41)])
    assert [entry.post_id for entry in store.read(5, Bounds(), 100) or []] == list(range(40, 24, -1))


def test_sqlite_keeps_entries_in_the_primary_keys_tree() -> None:
    """On SQLite the table has no rowid (microblog_timelines 0003), so a page is one range of the key's
    tree. PostgreSQL keeps the entries under their (user, post) primary key."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [TABLE])
            (sql,) = cursor.fetchone()
            assert sql.rstrip().upper().endswith("WITHOUT ROWID")
            cursor.execute(
                f"EXPLAIN QUERY PLAN SELECT post_id, author_id, origin_author_id FROM {TABLE}"
                " WHERE user_id = %s ORDER BY post_id DESC LIMIT 30",
                [7],
            )
            plans = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "USING PRIMARY KEY (user_id=?)" in plans, plans
            assert "TEMP B-TREE" not in plans, plans
        else:
            key = connection.introspection.get_primary_key_columns(cursor, TABLE)
            assert key == ["user_id", "post_id"]


@pytest.mark.django_db(transaction=True)
def test_a_table_django_rebuilt_with_a_rowid_is_made_again_without_one_after_migrate() -> None:
    """Django rebuilds a SQLite table from the model when a migration alters it, and knows no WITHOUT
    ROWID: the receiver run after every migrate makes the table again without one, rows kept."""
    DatabaseTimelineStore().deliver([7, 8], Entry(30, 31, 32))
    if connection.vendor != "sqlite":
        assert entries_table_has_rowid(connection) is None
        entries_table_after_migrate(using=connection.alias)
        assert TimelineEntry.objects.count() == 2
        return
    assert entries_table_has_rowid(connection) is False
    with connection.schema_editor() as editor:
        editor._remake_table(TimelineEntry)  # type: ignore[attr-defined]  # as an AlterField does on SQLite
    assert entries_table_has_rowid(connection) is True
    entries_table_after_migrate(using=connection.alias)
    assert entries_table_has_rowid(connection) is False
    assert DatabaseTimelineStore().read(8, Bounds(), 5) == [Entry(30, 31, 32)]
    assert TimelineEntry.objects.count() == 2
