"""The tables every checkout writes carry no index another one already gives, and every key they
reference stays reachable by an index (the lookups a PROTECT or CASCADE makes on a delete)."""

import pytest
from django.db import connection

from weituan.deals.models import Entry, Order, Posting, UserDealQuota

pytestmark = pytest.mark.django_db

WRITTEN_BY_A_CHECKOUT = (Order, Posting, Entry, UserDealQuota)


def _indexes(table: str) -> dict[str, tuple[list[str], bool]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        name: (list(about["columns"]), bool(about["unique"]))
        for name, about in found.items()
        if about["index"] or about["unique"]
    }


@pytest.mark.parametrize("model", WRITTEN_BY_A_CHECKOUT, ids=lambda model: model.__name__)
def test_no_index_is_the_leading_part_of_another(model) -> None:
    indexes = _indexes(model._meta.db_table)
    redundant = [
        (name, other)
        for name, (columns, unique) in indexes.items()
        for other, (other_columns, _) in indexes.items()
        if other != name and not unique and other_columns[: len(columns)] == columns
    ]
    assert redundant == []


@pytest.mark.parametrize("model", WRITTEN_BY_A_CHECKOUT, ids=lambda model: model.__name__)
def test_every_reference_leads_an_index(model) -> None:
    leading = {columns[0] for columns, _ in _indexes(model._meta.db_table).values() if columns}
    references = {field.column for field in model._meta.concrete_fields if field.is_relation}
    assert references - leading == set()
