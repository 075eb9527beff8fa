"""OAuth 2 for API clients: registering applications, and the authorization-code, password and
client-credentials grants, with optional PKCE (S256). Tokens themselves are issued by `tokens.py`.
"""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from weituan.accounts.models import AccessToken, AuthorizationCode, OAuthApplication, User
from weituan.accounts.queries import user_for_login
from weituan.accounts.scopes import scope_covered, scope_known
from weituan.accounts.tokens import access_token_issue, token_hash
from weituan.core.errors import ServiceError

OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"
CODE_LIFETIME = timedelta(minutes=10)
GRANT_TYPES = ("authorization_code", "password", "client_credentials")


class OAuthError(ServiceError):
    """An OAuth failure: `error` is the RFC 6749 error name, `code` Weituan's stable code."""

    status = 400

    def __init__(self, error: str, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code or error, status=status)
        self.error = error


def _invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "Client authentication failed", code="invalid_client", status=401)


def _invalid_grant(message: str, code: str = "invalid_grant") -> OAuthError:
    # 400, as RFC 6749 §5.2 and Mastodon answer it: the client authenticated fine, its grant did not
    # hold (401 is for a client that failed to authenticate, `invalid_client`).
    return OAuthError("invalid_grant", message, code=code, status=400)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    scope: str
    created_at: int

    def as_json(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "scope": self.scope,
            "created_at": self.created_at,
        }


def _issue(*, user: User | None, application: OAuthApplication, scopes: str) -> IssuedToken:
    raw, row = access_token_issue(user=user, application=application, scopes=scopes)
    return IssuedToken(access_token=raw, scope=row.scopes, created_at=int(row.created_at.timestamp()))


# --- scopes ----------------------------------------------------------------------------------------


def scopes_parse(raw: str | None) -> list[str]:
    """Split a scope string ("read write", or "read+write" as some clients send it); unknown names fail."""
    names = [name for name in (raw or "").replace("+", " ").replace(",", " ").split() if name]
    for name in names:
        if not scope_known(name):
            raise OAuthError("invalid_scope", f"Unknown scope: {name}")
    return list(dict.fromkeys(names))


def scopes_granted(requested: str | None, allowed: str) -> str:
    """The scopes a token gets: those requested, each of which the application must allow.

    `read:statuses` is allowed by `read`. Nothing requested means `read`, as Mastodon does.
    """
    allowed_set = set(scopes_parse(allowed))
    wanted = scopes_parse(requested) or (["read"] if "read" in allowed_set else sorted(allowed_set))
    for name in wanted:
        if not scope_covered(allowed_set, name):
            raise OAuthError("invalid_scope", f"The application may not ask for the scope {name}")
    return " ".join(wanted)


# --- applications ----------------------------------------------------------------------------------


def _bad_app(message: str) -> OAuthError:
    return OAuthError("invalid_request", message, code="invalid", status=422)


def _clean_redirect_uris(raw: str | list[str] | None) -> list[str]:
    if isinstance(raw, list):
        uris = [uri.strip() for item in raw for uri in item.splitlines() if uri.strip()]
    else:
        uris = [uri.strip() for uri in (raw or "").splitlines() if uri.strip()]
    if not uris:
        raise _bad_app("redirect_uris is required")
    for uri in uris:
        if uri == OOB_REDIRECT_URI:
            continue
        parts = urlsplit(uri)
        if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.netloc):
            raise _bad_app(f"Invalid redirect URI: {uri}")
        if parts.scheme.lower() in ("javascript", "data", "vbscript", "file"):
            raise _bad_app(f"Invalid redirect URI: {uri}")
    return list(dict.fromkeys(uris))


def oauth_app_create(
    *,
    name: str,
    redirect_uris: str | list[str] | None,
    scopes: str | None = "read",
    website: str = "",
    owner: User | None = None,
) -> OAuthApplication:
    """Register a client (POST /api/v1/apps). The client secret is shown to the caller once."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise _bad_app("client_name must be 1–100 characters")
    website = (website or "").strip()
    if website and urlsplit(website).scheme not in ("http", "https"):
        raise _bad_app("website must be an http(s) URL")
    granted = scopes_parse(scopes or "read")
    return OAuthApplication.objects.create(
        name=name,
        website=website[:200],
        redirect_uris="\n".join(_clean_redirect_uris(redirect_uris)),
        scopes=" ".join(granted or ["read"]),
        client_id=secrets.token_urlsafe(32),
        client_secret=secrets.token_urlsafe(32),
        owner=owner,
    )


def oauth_app_for_client_id(client_id: str) -> OAuthApplication:
    app = OAuthApplication.objects.filter(client_id=client_id or "").first() if client_id else None
    if app is None:
        raise _invalid_client()
    return app


def oauth_app_authenticate(*, client_id: str, client_secret: str) -> OAuthApplication:
    """The application whose id and secret these are, or `invalid_client` (401)."""
    app = OAuthApplication.objects.filter(client_id=client_id).first() if client_id else None
    expected = app.client_secret if app is not None else secrets.token_urlsafe(32)
    if app is None or not hmac.compare_digest(expected.encode(), (client_secret or "").encode()):
        raise _invalid_client()
    return app


def redirect_uri_resolve(app: OAuthApplication, redirect_uri: str | None) -> str:
    """The redirect URI to use: it must be one the application registered, exactly."""
    registered = app.redirect_uris.split()
    if not redirect_uri:
        if len(registered) == 1:
            return registered[0]
        raise OAuthError("invalid_request", "redirect_uri is required", code="invalid_redirect_uri")
    if redirect_uri not in registered:
        raise OAuthError(
            "invalid_request",
            "redirect_uri is not registered for this application",
            code="invalid_redirect_uri",
        )
    return redirect_uri


# --- grants ----------------------------------------------------------------------------------------


def authorization_code_issue(
    *,
    application: OAuthApplication,
    user: User,
    redirect_uri: str,
    scopes: str,
    code_challenge: str = "",
    code_challenge_method: str = "",
) -> str:
    """Record a one-time code for `user`'s approval and return it (only its hash is kept)."""
    method = code_challenge_method or ("S256" if code_challenge else "")
    if code_challenge and method != "S256":
        raise OAuthError("invalid_request", "Only the S256 code challenge method is supported")
    if code_challenge and not (43 <= len(code_challenge) <= 128):
        raise OAuthError("invalid_request", "code_challenge must be 43–128 characters")
    raw = secrets.token_urlsafe(32)
    AuthorizationCode.objects.create(
        application=application,
        user=user,
        code_hash=token_hash(raw),
        redirect_uri=redirect_uri,
        scopes=scopes,
        code_challenge=code_challenge,
        code_challenge_method=method,
        expires_at=timezone.now() + CODE_LIFETIME,
    )
    return raw


def _pkce_matches(challenge: str, verifier: str) -> bool:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(expected, challenge)


def authorization_code_exchange(
    *, application: OAuthApplication, code: str, redirect_uri: str | None, code_verifier: str = ""
) -> IssuedToken:
    """Trade a code for a token. A code works once: the conditional UPDATE lets only one caller win."""
    row = (
        AuthorizationCode.objects.select_related("user")
        .filter(code_hash=token_hash(code or ""), application=application)
        .first()
    )
    if row is None:
        raise _invalid_grant("The authorization code is invalid", "invalid_code")
    if row.used_at is not None:
        raise _invalid_grant("The authorization code was already used", "code_used")
    if row.expires_at <= timezone.now():
        raise _invalid_grant("The authorization code has expired", "code_expired")
    if (redirect_uri or row.redirect_uri) != row.redirect_uri:
        raise _invalid_grant("redirect_uri does not match the authorization request", "invalid_redirect_uri")
    if row.code_challenge and not (code_verifier and _pkce_matches(row.code_challenge, code_verifier)):
        raise _invalid_grant("The code_verifier does not match the code challenge", "invalid_code_verifier")
    if not row.user.is_active:
        raise _invalid_grant("The account is disabled", "account_disabled")
    with transaction.atomic():
        claimed = AuthorizationCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if not claimed:
            raise _invalid_grant("The authorization code was already used", "code_used")
        return _issue(user=row.user, application=application, scopes=row.scopes)


def password_grant(
    *, application: OAuthApplication, username: str, password: str, scope: str | None
) -> IssuedToken:
    """Log in with username or e-mail and password, as Mastodon.py's `log_in` does."""
    scopes = scopes_granted(scope, application.scopes)
    user = user_for_login(username)
    if user is None:
        # Spend the same time as a real check so a wrong name cannot be told from a wrong password.
        User().set_password(password or "")
        raise _invalid_grant("The username or password is wrong", "bad_credentials")
    if not user.check_password(password or ""):
        raise _invalid_grant("The username or password is wrong", "bad_credentials")
    return _issue(user=user, application=application, scopes=scopes)


def client_credentials_grant(*, application: OAuthApplication, scope: str | None) -> IssuedToken:
    """An application token with no user: enough to register accounts and verify the app."""
    return _issue(user=None, application=application, scopes=scopes_granted(scope, application.scopes))


def token_revoke(*, application: OAuthApplication, token: str) -> bool:
    """Revoke `token` if it belongs to `application`. Unknown tokens are not an error (RFC 7009)."""
    return bool(
        AccessToken.objects.filter(
            token_hash=token_hash(token or ""), application=application, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
    )


def user_token_issue(*, user: User, application: OAuthApplication, scopes: str) -> IssuedToken:
    """A token for an account just registered through the API by `application`."""
    return _issue(user=user, application=application, scopes=scopes_granted(scopes, application.scopes))
