"""Names of the checkout batch's prepared statements follow their values' types, whatever was named
before: another Python type, or a list of other items, is another prepared statement (PostgreSQL)."""

import pytest
from django.db import connection

from weituan.core.rows import execute_of, sql_bound, statement_names

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STATEMENT = "SELECT pg_typeof(%s)::text, %s::text"


def _run(values: list[object]) -> tuple[str, tuple[str, str]]:
    connection.ensure_connection()
    raw = connection.connection
    (name,) = statement_names(raw, [(STATEMENT, values)])
    assert name is not None
    with raw.cursor() as cursor:
        cursor.execute(sql_bound(raw, execute_of(name, len(values)), values))
        return name, cursor.fetchone()


def test_values_of_other_types_are_another_statement_each_time() -> None:
    plain, answer = _run([7, 7])
    assert answer == ("bigint", "7")
    text, answer = _run(["7", "7"])
    assert answer == ("text", "7") and text != plain
    assert _run([8, 8]) == (plain, ("bigint", "8"))  # named as before
    numbers, answer = _run([[1, 2], [1, 2]])
    assert answer == ("bigint[]", "{1,2}")
    words, answer = _run([["a"], ["a"]])
    # The same Python type (a list), other items: not the name the list of numbers has.
    assert answer == ("text[]", "{a}") and words != numbers
    assert _run([[3], [3]]) == (numbers, ("bigint[]", "{3}"))
