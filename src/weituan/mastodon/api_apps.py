"""Mastodon API: registering client applications (POST /api/v1/apps) and checking an app's token."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Router
from ninja.security import HttpBearer

from weituan.accounts import oauth
from weituan.accounts.auth import require_scopes
from weituan.accounts.models import AccessToken, OAuthApplication
from weituan.accounts.tokens import access_token_resolve
from weituan.core.errors import Unauthorized
from weituan.core.ratelimit import rate_limit_hit
from weituan.mastodon.request_params import TEXT, mastodon_params, params_documented

router = Router(tags=["mastodon:apps"])


class AppTokenAuth(HttpBearer):
    """Any live token issued to an application (a user's token or a client-credentials app token)
    that grants one of `scopes`; no scopes named means any such token."""

    def __init__(self, scopes: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.scopes = scopes

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        row = access_token_resolve(token)
        if row is None or row.application is None:
            raise Unauthorized("The access token is invalid", code="invalid_token")
        require_scopes(request, row.scopes, self.scopes)
        request.oauth_token = row  # type: ignore[attr-defined]
        if row.user is not None:
            request.user = row.user
        return row


app_token_auth = AppTokenAuth()
# Registering an account through an application, as Mastodon asks: `write` or `write:accounts`.
app_token_write_accounts_auth = AppTokenAuth(("write", "write:accounts"))


def _vapid_key() -> str:
    return str(getattr(settings, "WEBPUSH_VAPID_PUBLIC_KEY", "") or "")


def application_json(app: OAuthApplication, *, with_secret: bool) -> dict[str, Any]:
    """Mastodon's Application entity (CredentialApplication when `with_secret`)."""
    redirect_uris = app.redirect_uris.split()
    data: dict[str, Any] = {
        "id": str(app.pk),
        "name": app.name,
        "website": app.website or None,
        "scopes": app.scopes.split(),
        "redirect_uri": "\n".join(redirect_uris),
        "redirect_uris": redirect_uris,
        "vapid_key": _vapid_key(),
    }
    if with_secret:
        data.update(client_id=app.client_id, client_secret=app.client_secret, client_secret_expires_at=0)
    return data


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


@router.post(
    "/apps",
    auth=None,
    openapi_extra=params_documented(
        {
            "client_name": TEXT,
            "redirect_uris": {"anyOf": [TEXT, {"type": "array", "items": TEXT}]},
            "scopes": TEXT,
            "website": TEXT,
        },
        required=("client_name", "redirect_uris"),
    ),
    summary="Register a client application",
)
def create_app(request: HttpRequest) -> dict[str, Any]:
    rate_limit_hit(f"apps:{_client_address(request)}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)
    params = mastodon_params(request)
    raw_uris = params.values.get("redirect_uris")
    redirect_uris: str | list[str] | None = (
        [str(uri) for uri in raw_uris] if isinstance(raw_uris, list) else params.text("redirect_uris")
    )
    app = oauth.oauth_app_create(
        name=params.text("client_name") or "",
        redirect_uris=redirect_uris,
        scopes=params.text("scopes") or "read",
        website=params.text("website") or "",
    )
    return application_json(app, with_secret=True)


@router.get("/apps/verify_credentials", auth=app_token_auth, summary="The application of this token")
def verify_app_credentials(request: HttpRequest) -> dict[str, Any]:
    row: AccessToken = request.auth  # type: ignore[attr-defined]
    assert row.application is not None  # guaranteed by AppTokenAuth
    return application_json(row.application, with_secret=False)
