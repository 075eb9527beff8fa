"""Model fields of the project's own."""

from typing import Any

from django.db import models


class SnowflakeKey(models.BigIntegerField):  # type: ignore[type-arg]
    """A 64-bit time-sortable primary key (`core.ids.next_id`) that is, on SQLite, the table's rowid.

    SQLite makes a column its rowid only when it is declared exactly `integer PRIMARY KEY`; Django's
    `bigint` key is a separate unique index instead, so every lookup by id was two descents (the index,
    then the row by rowid) and every insert wrote one tree more. The column is the same 64-bit integer
    on both databases (PostgreSQL's `bigint`), and foreign keys to it keep their `bigint` columns.
    """

    def db_type(self, connection: Any) -> str | None:
        if connection.vendor == "sqlite":
            return "integer"
        return super().db_type(connection)

    def rel_db_type(self, connection: Any) -> str | None:
        return models.BigIntegerField().db_type(connection)
