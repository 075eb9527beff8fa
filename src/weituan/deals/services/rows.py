"""Hand-written SQL for the checkout path, where building the ORM's queries costs more than running them."""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model

_inserts: dict[tuple[str, type[Model], int], tuple[str, list[Field[Any, Any]]]] = {}


def rows_insert(instances: Sequence[Model]) -> None:
    """INSERT unsaved instances of one model in one statement and set their ids, as `bulk_create` does.

    Values go through each field's own `pre_save` and `get_db_prep_save`, so defaults, `auto_now_add`
    and the database's date and JSON formats are what the ORM would have written. Rows come back in
    the order they were sent (both SQLite and PostgreSQL return VALUES rows in order, which `bulk_create`
    relies on as well).
    """
    if not instances:
        return
    model = type(instances[0])
    shape = (connection.vendor, model, len(instances))
    statement = _inserts.get(shape)
    if statement is None:
        meta = model._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
        statement = _inserts[shape] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns})"  # noqa: S608
            f" VALUES {', '.join([row_marks] * len(instances))} RETURNING {quote(str(meta.pk.column))}",  # type: ignore[union-attr]
            fields,
        )
    sql, fields = statement
    params: list[Any] = []
    for instance in instances:
        params += [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    for instance, id_ in zip(instances, ids, strict=True):
        instance.pk = id_
        instance._state.adding = False
        instance._state.db = connection.alias
