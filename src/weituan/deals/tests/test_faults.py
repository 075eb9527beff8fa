"""Orders and deals meeting faults: a database connection ended under the checkout, a Redis stock gate
that counts units a stopped process took, a Redis restarted mid-sale."""

import json
from typing import Any

import pytest
from django.db import connection, connections
from django.test import RequestFactory

from weituan.accounts.tokens import access_token_issue
from weituan.core.testing import CountingWSGI
from weituan.deals.api_orders_fast import with_order_checkout_wsgi
from weituan.deals.models import Deal, Order


def _post(app: Any, path: str, body: Any, **headers: Any) -> tuple[str, dict[str, Any]]:
    environ = (
        RequestFactory().post(path, data=json.dumps(body), content_type="application/json", **headers).environ
    )
    started: list[Any] = []
    answer = b"".join(app(environ, lambda status, pairs: started.extend([status, pairs])))
    return started[0], json.loads(answer)


def _end_this_connection() -> None:
    """What an operator's pg_terminate_backend (or a database restart) does to this thread's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_order_after_the_database_ended_the_connection_is_placed_not_a_500(
    shopper: Any, make_live_deal: Any, fund: Any
) -> None:
    django = CountingWSGI()
    fast = with_order_checkout_wsgi(django)
    deal = make_live_deal(max_quantity=10, per_user_limit=5)
    fund(shopper)
    raw, _ = access_token_issue(user=shopper)
    path = f"/api/v1/deals/{deal.id}/orders"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    first, _ = _post(fast, path, {"quantity": 1}, HTTP_IDEMPOTENCY_KEY="one", **headers)
    assert first == "201 Created"

    _end_this_connection()
    status, body = _post(fast, path, {"quantity": 1}, HTTP_IDEMPOTENCY_KEY="two", **headers)

    assert (status, body.get("code")) == ("201 Created", None)
    assert django.calls == 0
    assert Order.objects.filter(deal=deal, buyer=shopper).count() == 2
    assert Deal.objects.get(id=deal.id).sold == 2
