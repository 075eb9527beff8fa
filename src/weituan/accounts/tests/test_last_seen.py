"""LastSeenMiddleware: signed-in callers are marked seen at most once per window, and most requests pay
nothing for it."""

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient, Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from weituan.accounts import middleware
from weituan.accounts.models import User
from weituan.accounts.tokens import access_token_issue

pytestmark = pytest.mark.django_db


def seen(user: User) -> Any:
    return User.objects.values_list("last_seen_at", flat=True).get(pk=user.pk)


def user_writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "accounts_user"')]


def test_a_session_user_is_marked_once_per_window(shopper: User, outsider: User) -> None:
    client = Client()
    client.force_login(shopper)
    with CaptureQueriesContext(connection) as first:
        client.get("/notifications")
    assert len(user_writes(first)) == 1
    marked = seen(shopper)
    assert marked is not None and timezone.now() - marked < timedelta(minutes=1)
    with CaptureQueriesContext(connection) as second:
        client.get("/notifications")
    with CaptureQueriesContext(connection) as third:
        client.get("/notifications")
    # Within the window the mark costs no query at all.
    assert user_writes(second) == [] and len(second.captured_queries) == len(third.captured_queries)
    assert seen(shopper) == marked
    assert seen(outsider) is None
    # The instance reports the account as active this month.
    assert Client().get("/api/v2/instance").json()["usage"]["users"]["active_month"] == 1


def test_token_callers_are_marked_too(shopper: User, merchant: User) -> None:
    raw, _ = access_token_issue(user=shopper)
    Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/accounts/verify_credentials")
    assert seen(shopper) is not None
    # The home timeline's caller is known by id alone; marking them loads nothing more.
    raw, _ = access_token_issue(user=merchant)
    Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/timelines/home")
    assert seen(merchant) is not None


def test_a_request_that_never_looked_at_the_user_loads_nothing(shopper: User) -> None:
    client = Client()
    client.force_login(shopper)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/healthz").json() == {"status": "ok"}
    assert len(queries.captured_queries) == 1  # the health check's own SELECT 1
    assert seen(shopper) is None
    anonymous = Client().get("/")
    assert anonymous.status_code == 200
    assert User.objects.filter(last_seen_at__isnull=False).count() == 0


def test_the_process_memo_expires_with_the_window(shopper: User, monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr(middleware.time, "monotonic", lambda: now[0])
    assert middleware.last_seen_due(shopper.pk) is True
    assert middleware.last_seen_due(shopper.pk) is False
    now[0] += middleware.LAST_SEEN_RESOLUTION.total_seconds() + 1
    assert middleware.last_seen_due(shopper.pk) is True


def test_the_memo_starts_over_when_full(monkeypatch: Any) -> None:
    monkeypatch.setattr(middleware, "MEMO_LIMIT", 3)
    monkeypatch.setattr(middleware, "_marked_until", {})
    for user_id in (1, 2, 3):
        assert middleware.last_seen_due(user_id) is True
    assert len(middleware._marked_until) == 3
    assert middleware.last_seen_due(4) is True
    assert len(middleware._marked_until) == 1
    assert middleware.last_seen_due(1) is True  # forgotten: the cache gate decides again


def test_the_async_stack_marks_users_too(shopper: User) -> None:
    client = AsyncClient()
    async_to_sync(client.aforce_login)(shopper)
    response = async_to_sync(client.get)("/notifications")
    assert response.status_code == 200
    assert seen(shopper) is not None
