"""Bearer-token resolution: the same rows the ORM would load, in one query, and never stale."""

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from weituan.accounts import oauth
from weituan.accounts.models import AccessToken, OAuthApplication, User
from weituan.accounts.tokens import access_token_issue, access_token_resolve, access_token_revoke, token_hash

pytestmark = pytest.mark.django_db


def _fields(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


def _orm(raw: str) -> AccessToken:
    return AccessToken.objects.select_related("user", "application").get(token_hash=token_hash(raw))


def test_a_token_resolves_to_the_rows_the_orm_loads_in_one_query(shopper: Any) -> None:
    shopper.verified_at = shopper.date_joined
    shopper.save()
    app = oauth.oauth_app_create(name="reader", redirect_uris=oauth.OOB_REDIRECT_URI, scopes="read write")
    user_token, _ = access_token_issue(user=shopper, application=app, scopes="read write:statuses")
    app_token, _ = access_token_issue(user=None, application=app, scopes="read")
    for raw in (user_token, app_token):
        with CaptureQueriesContext(connection) as queries:
            found = access_token_resolve(raw)
            assert found is not None
            # Its user and application come loaded: reading them costs nothing more.
            user, application = found.user, found.application
        assert len(queries) == 1
        expected = _orm(raw)
        assert _fields(found) == _fields(expected)
        assert _fields(user) == _fields(expected.user)
        assert _fields(application) == _fields(expected.application)
        assert found._state.adding is False and found._state.db == "default"
    resolved = access_token_resolve(user_token)
    assert resolved is not None and isinstance(resolved.user, User)
    assert isinstance(resolved.application, OAuthApplication)
    assert resolved.user.is_verified_merchant is False and resolved.user.verified_at == shopper.verified_at
    # Each call makes new instances: one request's changes never leak into another's.
    assert access_token_resolve(user_token) is not resolved
    assert access_token_resolve(user_token).user is not resolved.user  # type: ignore[union-attr]


def test_revocation_deactivation_and_scope_changes_are_seen_by_the_next_lookup(shopper: Any) -> None:
    raw, row = access_token_issue(user=shopper)
    assert access_token_resolve(raw) is not None
    AccessToken.objects.filter(pk=row.pk).update(scopes="read")  # no signal: nothing to invalidate
    assert access_token_resolve(raw).scopes == "read"  # type: ignore[union-attr]
    User.objects.filter(pk=shopper.pk).update(is_active=False)
    assert access_token_resolve(raw) is None
    User.objects.filter(pk=shopper.pk).update(is_active=True)
    assert access_token_resolve(raw) is not None
    assert access_token_revoke(raw=raw)
    assert access_token_resolve(raw) is None
    app = oauth.oauth_app_create(name="app", redirect_uris=oauth.OOB_REDIRECT_URI, scopes="read")
    app_raw, _ = access_token_issue(user=None, application=app, scopes="read")
    assert oauth.token_revoke(application=app, token=app_raw)
    assert access_token_resolve(app_raw) is None


@pytest.mark.parametrize("raw", ["", "x" * 201, "unknown"])
def test_no_or_unknown_token_resolves_to_nothing(raw: str) -> None:
    assert access_token_resolve(raw) is None
