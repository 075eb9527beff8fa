"""API authentication for django-ninja: OAuth bearer tokens, within their scopes, or the browser session.

Endpoints declare who may call them and, for tokens, which scopes let them in, as Mastodon does:
`auth=scoped_auth("write", "write:statuses")` needs a user; `scoped_auth(..., anonymous=True)` also
lets anonymous callers in (`request.auth` is then True and `request_user` None), while a token that
is sent must still carry the scope. `api_auth` and `optional_auth` need `read` to look and `write` to
change anything. A token without the scope gets 403 `insufficient_scope` before the endpoint runs, so
nothing changes. A logged-in browser session has every scope.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from weituan.accounts.scopes import default_scopes, scopes_allow
from weituan.accounts.tokens import HOME_TIMELINE_SCOPES, access_token_resolve, access_token_viewer
from weituan.core.errors import PermissionDenied, Unauthorized, ValidationFailed


def _invalid_token() -> Unauthorized:
    # A token that was sent but is wrong is an error, not an anonymous request.
    return Unauthorized("The access token is invalid", code="invalid_token")


def require_scopes(request: HttpRequest, granted: str, any_of: tuple[str, ...] | None) -> None:
    """Refuse (403 `insufficient_scope`) a token whose `granted` scopes cover none of `any_of`.

    `None` means the endpoint named none: the method decides (`read` for GET, else `write`).
    """
    needed = any_of if any_of is not None else default_scopes(request.method or "GET")
    if needed and not scopes_allow(granted, needed):
        raise PermissionDenied(
            "This action is outside the authorized scopes",
            code="insufficient_scope",
            required_scopes=list(needed),
        )


class BearerTokenAuth(HttpBearer):
    """A user's bearer token, which must grant one of `scopes` (None: by method; (): any token)."""

    def __init__(self, scopes: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.scopes = scopes

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        row = access_token_resolve(token)
        if row is None or row.user is None:
            raise _invalid_token()
        require_scopes(request, row.scopes, self.scopes)
        request.user = row.user
        request.oauth_token = row  # type: ignore[attr-defined]
        return row.user


def _user_required() -> ValidationFailed:
    # Mastodon's answer to an application's own token where a user is needed: the token is good (a
    # 401 would make the client drop it), it is simply nobody's.
    return ValidationFailed("This method requires an authenticated user", code="user_required")


class MastodonBearerAuth(BearerTokenAuth):
    """A bearer token on a Mastodon endpoint, which also takes an application's own token (client
    credentials, no user) as Mastodon does: within its scopes, as an anonymous caller where the endpoint
    lets them in (`anonymous`), else 422 `user_required`."""

    def __init__(self, scopes: tuple[str, ...] | None = None, *, anonymous: bool = False) -> None:
        super().__init__(scopes)
        self.anonymous = anonymous

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        row = access_token_resolve(token)
        if row is None:
            raise _invalid_token()
        if row.user is None:
            require_scopes(request, row.scopes, self.scopes)
            if not self.anonymous:
                raise _user_required()
            request.oauth_token = row  # type: ignore[attr-defined]
            return True
        require_scopes(request, row.scopes, self.scopes)
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

    def __init__(self, scopes: tuple[str, ...]) -> None:
        super().__init__()
        self.scopes = scopes

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = access_token_viewer(token)
        if found is None:
            row = access_token_resolve(token)
            if row is not None and row.user is None:
                raise _user_required()
        return self.viewer_of(request, found)

    def viewer_of(self, request: HttpRequest, found: tuple[int, str] | None) -> Viewer:
        """What `authenticate` answers for a token already looked up: `found` is what
        `access_token_viewer` gives for it (read by a caller together with its own rows)."""
        if found is None:
            raise _invalid_token()
        user_id, granted = found
        require_scopes(request, granted, self.scopes)
        request.user = SimpleLazyObject(lambda: get_user_model().objects.get(pk=user_id))  # type: ignore[assignment]
        request.seen_user_id = user_id  # type: ignore[attr-defined]
        return Viewer(pk=user_id)


class SessionUserAuth(APIKeyCookie):
    """The logged-in browser session, CSRF-checked on unsafe methods as ninja checks it; a failed check
    is the API's 403 with its own code, `csrf_failed`."""

    param_name = "sessionid"

    def _get_key(self, request: HttpRequest) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            # No logged-in session for a forged request to ride on: the caller is anonymous, and an
            # endpoint that needs someone answers 401 ("log in"), not a CSRF refusal.
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise PermissionDenied(
                "CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header,"
                " or use a bearer token",
                code="csrf_failed",
            )
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None


class AnonymousAllowed:
    """Always passes; lets an endpoint see a user when there is one."""

    lets_anonymous_in = True  # the OpenAPI document lists no credentials among the endpoint's choices

    def __call__(self, request: HttpRequest) -> Any:
        return True


session_auth = SessionUserAuth()
_anonymous = AnonymousAllowed()


def scoped_auth(*scopes: str, anonymous: bool = False) -> list[Any]:
    """The auth of an endpoint a token may call when it holds one of `scopes` (none named: any token)."""
    callbacks: list[Any] = [MastodonBearerAuth(scopes, anonymous=anonymous), session_auth]
    if anonymous:
        callbacks.append(_anonymous)
    return callbacks


bearer_auth = BearerTokenAuth()
api_auth = [bearer_auth, session_auth]
optional_auth = [bearer_auth, session_auth, _anonymous]
# For reads that need only the caller's id: request.auth is then a Viewer or the session's user.
viewer_auth = [BearerViewerAuth(HOME_TIMELINE_SCOPES), session_auth]


def request_viewer(request: HttpRequest) -> Any:
    """The caller on an endpoint with `auth=viewer_auth`: something with `pk` (a Viewer or a user)."""
    return request.auth  # type: ignore[attr-defined]


def request_user(request: HttpRequest) -> Any:
    """The authenticated user, or None for an anonymous request."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None
