"""The checkout's first statement: the deal of an order, with what the buyer's Idempotency-Key already
names (the order it placed, another write or a refund under it) and, on PostgreSQL, the new order's id
drawn from its sequence; for a solo wallet order through the API, the caller's token read with them.

Hand-written, and each row made into a Deal without a queryset: every checkout starts here, and
compiling the ORM's query cost more than running it.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from weituan.core.errors import NotFound
from weituan.core.idempotency import USER_SCOPE_PREFIX, user_scope
from weituan.core.models import IdempotencyRecord
from weituan.core.rows import RowReader, fetch_rows
from weituan.deals.models import Deal, Order, Refund, WriteKey


def order_checkout_read(
    *, token_sql: str, token_params: Sequence[Any], deal_id: int, client_key: str | None
) -> tuple[tuple[int, str] | None, Deal | None]:
    """The caller's token and the deal of a solo wallet order, in one statement (one round trip less
    on every checkout): `token_sql` selects the token's `user_id` and `scopes` in at most one row
    (`accounts.tokens.access_token_viewer_sql`). Returns (user id, scopes), or None when the token
    matches nothing, and the deal as `deal_for_order` reads it for that user and `client_key` (None
    when there is no such deal). The deal is read before the caller's scopes are checked: a refused
    caller leaves at most a gap in the orders' ids."""
    draw = connection.vendor == "postgresql"
    key = (connection.alias, connection.vendor, draw, token_sql)
    sql = _checkout_statements.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        drawn = f", nextval({order_sequence()})" if draw else ""
        key_used = key_used_sql(f"'{USER_SCOPE_PREFIX}' || CAST(v.user_id AS text)", "v.user_id", "v.user_id")
        sql = _checkout_statements[key] = (
            f"SELECT v.user_id, v.scopes, {_DEAL_ROWS.columns('d')}, (SELECT o.id FROM {quote(Order._meta.db_table)} o"  # noqa: S608
            f" WHERE o.buyer_id = v.user_id AND o.client_key = %s), {key_used}{drawn}"
            f" FROM ({token_sql}) AS v LEFT JOIN {quote(Deal._meta.db_table)} d ON d.id = %s"
        )
    keys = [client_key] * 4  # the order's, the idempotency record's, the refund's, another order write's
    rows = fetch_rows(sql, [*keys, *token_params, deal_id])  # prepared once per connection
    if not rows:
        return None, None
    found = rows[0]
    columns = len(_DEAL_ROWS)
    deal = _DEAL_ROWS.instance(found[2 : 2 + columns])
    if deal is not None:
        deal.replay_order_id = found[2 + columns]  # type: ignore[attr-defined]
        deal.key_used_elsewhere = bool(found[3 + columns])  # type: ignore[attr-defined]
        deal.next_order_id = found[4 + columns] if draw else None  # type: ignore[attr-defined]
    return (int(found[0]), str(found[1])), deal


_checkout_statements: dict[tuple[str, str, bool, str], str] = {}


def deal_for_order(
    *, deal_id: int, buyer_id: int, client_key: str | None, draw_order_id: bool = False
) -> Deal:
    """The deal, and in `replay_order_id` the buyer's order under `client_key` if there is one (in
    `key_used_elsewhere` whether the buyer's other API writes used that key, a refund's included): one
    query.

    With `draw_order_id` (PostgreSQL), `next_order_id` is an id drawn from the orders' sequence for the
    order this request may place (else None). An id drawn and not used (a refusal, a replay) is a gap
    in the sequence, as a rolled-back insert leaves one.
    """
    # Hand-written, and the row made into a Deal without a queryset: every checkout starts here.
    params = [buyer_id, client_key, user_scope(buyer_id), client_key, buyer_id, client_key]
    params += [buyer_id, client_key, deal_id]
    rows = fetch_rows(_deal_sql(draw_order_id), params)  # prepared once per connection
    if not rows:
        raise NotFound("No such deal")
    found = rows[0]
    columns = len(_DEAL_ROWS)
    deal = _DEAL_ROWS.instance(found[:columns])
    assert deal is not None
    deal.replay_order_id = found[columns]  # type: ignore[attr-defined]
    deal.key_used_elsewhere = bool(found[columns + 1])  # type: ignore[attr-defined]
    deal.next_order_id = found[columns + 2] if draw_order_id else None  # type: ignore[attr-defined]
    return deal


_DEAL_ROWS = RowReader(Deal)
_sequences: dict[str, str] = {}
_deal_statements: dict[tuple[str, str, bool], str] = {}


def _deal_sql(draw_order_id: bool) -> str:
    """The statement of `deal_for_order`, made once per database (and whether it draws an id)."""
    key = (connection.alias, connection.vendor, draw_order_id)
    sql = _deal_statements.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        drawn = f", nextval({order_sequence()})" if draw_order_id else ""
        sql = _deal_statements[key] = (
            f"SELECT {_DEAL_ROWS.columns('d')}, (SELECT o.id FROM {quote(Order._meta.db_table)} o"  # noqa: S608
            f" WHERE o.buyer_id = %s AND o.client_key = %s), {key_used_sql('%s', '%s', '%s')}{drawn}"
            f" FROM {quote(Deal._meta.db_table)} d WHERE d.id = %s"
        )
    return sql


def key_used_sql(scope: str, user_id: str, sender_id: str, key: str = "%s") -> str:
    """SQL: whether the buyer used the key (`key`, SQL: by default each of the next three parameters) for another write of the
    native API: its idempotency record in the buyer's `scope` (SQL, `core.idempotency.user_scope`), a
    refund the buyer (`user_id`, SQL) asked for under it, which keeps its key on its own row
    (`Refund.client_key`) even where no record was stored (an answer of `refund_pending`), or another
    write the buyer (`sender_id`, SQL) sent with it whose key is kept by the change itself (`WriteKey`:
    a cancel, a switch to the solo price, a merge, a redemption, a publication) even where its record
    was never finished. Each is one lookup of an index inside the checkout's first statement, no round
    trip of its own. A key nobody sent (NULL) matches nothing."""
    quote = connection.ops.quote_name
    records, refunds = quote(IdempotencyRecord._meta.db_table), quote(Refund._meta.db_table)
    written = quote(WriteKey._meta.db_table)
    return (
        f"(EXISTS (SELECT 1 FROM {records} r WHERE r.scope = {scope} AND r.key = {key})"  # noqa: S608
        f" OR EXISTS (SELECT 1 FROM {refunds} f WHERE f.requested_by_id = {user_id} AND f.client_key = {key})"
        f" OR EXISTS (SELECT 1 FROM {written} w WHERE w.sender_id = {sender_id} AND w.key = {key}))"
    )


def order_sequence() -> str:
    """PostgreSQL: the orders' id sequence, quoted as a literal for nextval() (looked up once)."""
    name = _sequences.get(connection.alias)
    if name is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Order._meta.db_table])
            found = cursor.fetchone()[0]
        name = _sequences[connection.alias] = "'" + str(found).replace("'", "''") + "'"
    return name
