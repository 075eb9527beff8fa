"""API authentication for django-ninja: OAuth bearer tokens, or the browser session.

Endpoints use `auth=api_auth` (a user is required) or `auth=optional_auth` (anonymous allowed,
`request.auth` is then None). The authenticated user is also put on `request.user`.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from ninja.security import APIKeyCookie, HttpBearer

from weituan.accounts.tokens import access_token_resolve, access_token_user_id
from weituan.core.errors import Unauthorized


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        row = access_token_resolve(token)
        if row is None or row.user is None:
            # A token that was sent but is wrong is an error, not an anonymous request.
            raise Unauthorized("The access token is invalid", code="invalid_token")
        request.user = row.user
        request.oauth_token = row  # type: ignore[attr-defined]
        return row.user


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller of an endpoint that needs only their id (the home timeline)."""

    pk: int

    @property
    def id(self) -> int:
        return self.pk


class BearerViewerAuth(HttpBearer):
    """A bearer token resolved to the caller's id alone; `request.user` loads the account on first use."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user_id = access_token_user_id(token)
        if user_id is None:
            raise Unauthorized("The access token is invalid", code="invalid_token")
        request.user = SimpleLazyObject(lambda: get_user_model().objects.get(pk=user_id))  # type: ignore[assignment]
        return Viewer(pk=user_id)


class SessionUserAuth(APIKeyCookie):
    """The logged-in browser session (CSRF-checked on unsafe methods by ninja)."""

    param_name = "sessionid"

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None


class AnonymousAllowed:
    """Always passes; lets an endpoint see a user when there is one."""

    def __call__(self, request: HttpRequest) -> Any:
        return True


bearer_auth = BearerTokenAuth()
session_auth = SessionUserAuth()
api_auth = [bearer_auth, session_auth]
# For reads that need only the caller's id: request.auth is then a Viewer or the session's user.
viewer_auth = [BearerViewerAuth(), session_auth]
optional_auth = [bearer_auth, session_auth, AnonymousAllowed()]


def request_viewer(request: HttpRequest) -> Any:
    """The caller on an endpoint with `auth=viewer_auth`: something with `pk` (a Viewer or a user)."""
    return request.auth  # type: ignore[attr-defined]


def request_user(request: HttpRequest) -> Any:
    """The authenticated user, or None for an anonymous request."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None
