"""The hand-written wire paths: Redis commands packed without the client's command path, and
statements run on a cursor kept per PostgreSQL connection."""

from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from weituan.core.redis import _packed
from weituan.core.rows import fetch_rows

_arguments = st.lists(
    st.one_of(st.text(), st.binary(), st.integers(min_value=-(2**80), max_value=2**80)), max_size=8
)


@given(st.lists(_arguments, min_size=1, max_size=4))
def test_packed_commands_are_the_clients_bytes(arguments: list[list[Any]]) -> None:
    commands = [("EVALSHA", "f" * 40, len(args), *args) for args in arguments]
    assert _packed(commands) == b"".join(Connection().pack_commands(commands))


@pytest.mark.parametrize("odd", [1.5, True, memoryview(b"x"), None])
def test_other_arguments_go_to_the_clients_packer(odd: Any) -> None:
    assert _packed([("EVALSHA", "f" * 40, 1, "key", odd)]) is None


@pytest.mark.django_db(transaction=True)
def test_statements_share_a_kept_cursor_and_are_still_counted() -> None:
    db = connections[DEFAULT_DB_ALIAS]
    assert fetch_rows("SELECT %s + 1", [1]) == [(2,)]
    kept = db.__dict__["_weituan_cursor"][1]
    assert fetch_rows("SELECT %s, '100%%'", ["二"]) == [("二", "100%")]
    assert db.__dict__["_weituan_cursor"][1] is kept
    with CaptureQueriesContext(db) as captured:  # logged statements go through Django's wrapper
        assert fetch_rows("SELECT %s * 2", [4]) == [(8,)]
    assert [("SELECT" in query["sql"] and "* 2" in query["sql"]) for query in captured.captured_queries] == [
        True
    ]
    # A failing statement raises Django's error, marks the transaction, and leaves the cursor usable.
    with pytest.raises(DatabaseError), transaction.atomic():
        fetch_rows("SELECT * FROM no_such_table WHERE 1 = %s", [1])
    assert fetch_rows("SELECT %s + 0", [7]) == [(7,)]
    with transaction.atomic():
        with pytest.raises(DatabaseError), transaction.atomic():
            fetch_rows("SELECT * FROM no_such_table WHERE 1 = %s", [1])
        assert fetch_rows("SELECT %s + 0", [8]) == [(8,)]  # the savepoint rolled back
    before = db.connection
    db.close()  # (a test's in-memory SQLite database stays open)
    assert fetch_rows("SELECT %s + 0", [9]) == [(9,)]
    owner, cursor = db.__dict__["_weituan_cursor"]
    assert owner is db.connection
    assert (cursor is kept) == (db.connection is before)  # a new connection, a new cursor
