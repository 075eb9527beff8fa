"""OAuth 2 endpoints: /oauth/authorize (approve page), /oauth/token, /oauth/revoke and server metadata."""

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from weituan.accounts import oauth
from weituan.accounts.oauth import OAuthError
from weituan.accounts.scopes import GRANULAR_SCOPES, TOP_SCOPES, scope_description
from weituan.core.errors import RateLimited, ServiceError
from weituan.core.ratelimit import rate_limit_hit

# The refusals a person meets on the authorization page, in their language, by Weituan's code; the
# service's English sentence (for the client's developer) is shown under it with the code.
_PAGE_ERRORS: dict[str, Any] = {
    "invalid_client": gettext_lazy(
        "This application is not registered here. The link that brought you may be wrong or out of date."
    ),
    "invalid_redirect_uri": gettext_lazy(
        "The application asked to send you back to an address it did not register, so nothing was shared "
        "with it."
    ),
    "access_denied": gettext_lazy("You denied the application access. Nothing was shared with it."),
    "invalid_scope": gettext_lazy("The application asked for permissions it may not have."),
}


def _error_page(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    text = _PAGE_ERRORS.get(exc.code) or gettext_lazy("The application's request could not be understood.")
    context = {"error": exc, "message": str(text)}
    return render(request, "accounts/oauth_error.html", context, status=400)


def oauth_error_response(exc: ServiceError) -> JsonResponse:
    error = exc.error if isinstance(exc, OAuthError) else exc.code
    body = {"error": error, "error_description": exc.message, "code": exc.code}
    response = JsonResponse(body, status=exc.status)
    if exc.status == 401:
        response["WWW-Authenticate"] = f'Bearer error="{error}"'
    if isinstance(exc, RateLimited):
        for name, value in exc.headers().items():
            response[name] = value
    response["Cache-Control"] = "no-store"
    return response


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def _body_params(request: HttpRequest) -> dict[str, str]:
    """Token-endpoint parameters: form-encoded per RFC 6749, JSON accepted as many clients send it."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, RecursionError) as exc:  # nested deeper than the parser goes
            raise OAuthError("invalid_request", "The request body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "The request body must be a JSON object")
        return {key: str(value) for key, value in data.items() if value is not None}
    return {key: request.POST.get(key, "") for key in request.POST}


def _client_credentials(request: HttpRequest, params: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "Malformed Basic credentials", status=401) from exc
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret
    return params.get("client_id", ""), params.get("client_secret", "")


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> JsonResponse:
    try:
        rate_limit_hit(f"oauth-token:{_client_address(request)}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)
        params = _body_params(request)
        grant_type = params.get("grant_type", "")
        if grant_type not in oauth.GRANT_TYPES:
            raise OAuthError(
                "unsupported_grant_type", f"Unsupported grant_type: {grant_type or '(none)'}", status=400
            )
        client_id, client_secret = _client_credentials(request, params)
        application = oauth.oauth_app_authenticate(client_id=client_id, client_secret=client_secret)
        if grant_type == "authorization_code":
            issued = oauth.authorization_code_exchange(
                application=application,
                code=params.get("code", ""),
                redirect_uri=params.get("redirect_uri") or None,
                code_verifier=params.get("code_verifier", ""),
            )
        elif grant_type == "password":
            # Guessing passwords is slowed per account as well as per address.
            login = params.get("username", "").strip().lower()
            rate_limit_hit(f"oauth-password:{login}", limit=20)
            issued = oauth.password_grant(
                application=application,
                username=params.get("username", ""),
                password=params.get("password", ""),
                scope=params.get("scope") or params.get("scopes"),
            )
        else:
            issued = oauth.client_credentials_grant(
                application=application, scope=params.get("scope") or params.get("scopes")
            )
    except ServiceError as exc:
        return oauth_error_response(exc)
    response = JsonResponse(issued.as_json())
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@require_POST
def revoke(request: HttpRequest) -> JsonResponse:
    try:
        params = _body_params(request)
        client_id, client_secret = _client_credentials(request, params)
        application = oauth.oauth_app_authenticate(client_id=client_id, client_secret=client_secret)
        oauth.token_revoke(application=application, token=params.get("token", ""))
    except ServiceError as exc:
        return oauth_error_response(exc)
    return JsonResponse({})


def _redirect_with(uri: str, params: dict[str, str]) -> HttpResponseRedirect:
    parts = urlsplit(uri)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    response = HttpResponseRedirect(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")))
    # Custom schemes (myapp://callback) are how mobile clients receive the code.
    response.allowed_schemes = [parts.scheme]  # type: ignore[attr-defined]
    return response


def _allow_form_redirect_to(response: HttpResponse, redirect_uri: str) -> None:
    """Browsers apply CSP form-action to the redirect that follows a form post, so the approve page
    must name the client's origin or the code would never reach it."""
    parts = urlsplit(redirect_uri)
    source = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
    policy: dict[str, Any] = dict(settings.SECURE_CSP)
    policy["form-action"] = [*list(policy.get("form-action") or []), source]
    response._csp_config = policy  # type: ignore[attr-defined]


def _authorize_request(source: Any) -> dict[str, Any]:
    """Check the client and redirect URI of an authorization request; errors here are shown, not
    redirected, because an unverified redirect URI must never receive anything."""
    application = oauth.oauth_app_for_client_id(source.get("client_id", ""))
    redirect_uri = oauth.redirect_uri_resolve(application, source.get("redirect_uri"))
    return {
        "application": application,
        "redirect_uri": redirect_uri,
        "state": source.get("state", ""),
        "response_type": source.get("response_type", "code"),
        "scope_raw": source.get("scope") or source.get("scopes") or "",
        "code_challenge": source.get("code_challenge", ""),
        "code_challenge_method": source.get("code_challenge_method", ""),
    }


@login_required
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    source = request.GET if request.method == "GET" else request.POST
    try:
        context = _authorize_request(source)
    except ServiceError as exc:
        return _error_page(request, exc)
    redirect_uri = context["redirect_uri"]
    state = context["state"]
    oob = redirect_uri == oauth.OOB_REDIRECT_URI

    def refuse(error: str, description: str) -> HttpResponse:
        if oob:
            return _error_page(request, OAuthError(error, description))
        params = {"error": error, "error_description": description}
        return _redirect_with(redirect_uri, {**params, "state": state} if state else params)

    if context["response_type"] != "code":
        return refuse("unsupported_response_type", "Only response_type=code is supported")
    try:
        scopes = oauth.scopes_granted(context["scope_raw"], context["application"].scopes)
    except OAuthError as exc:
        return refuse(exc.error, exc.message)
    # Each scope asked for with what it lets the application do, as Mastodon's page shows them.
    context["scopes"] = [(name, scope_description(name)) for name in scopes.split()]
    context["scope"] = scopes

    if request.method == "GET":
        page = render(request, "accounts/oauth_authorize.html", context)
        if not oob:
            _allow_form_redirect_to(page, redirect_uri)
        return page
    if request.POST.get("decision") != "approve":
        return refuse("access_denied", "The user denied the request")
    try:
        code = oauth.authorization_code_issue(
            application=context["application"],
            user=request.user,  # type: ignore[arg-type]
            redirect_uri=redirect_uri,
            scopes=scopes,
            code_challenge=context["code_challenge"],
            code_challenge_method=context["code_challenge_method"],
        )
    except OAuthError as exc:
        return refuse(exc.error, exc.message)
    if oob:
        return render(request, "accounts/oauth_code.html", {"code": code, **context})
    return _redirect_with(redirect_uri, {"code": code, "state": state} if state else {"code": code})


@require_GET
def server_metadata(request: HttpRequest) -> JsonResponse:
    """RFC 8414 metadata; Mastodon.py reads it to find the endpoints and the grants we support."""

    def url(name: str) -> str:
        return request.build_absolute_uri(reverse(name))

    return JsonResponse(
        {
            "issuer": request.build_absolute_uri("/"),
            "service_documentation": "https://docs.joinmastodon.org/",
            "authorization_endpoint": url("accounts:oauth_authorize"),
            "token_endpoint": url("accounts:oauth_token"),
            "revocation_endpoint": url("accounts:oauth_revoke"),
            "app_registration_endpoint": request.build_absolute_uri("/api/v1/apps"),
            "scopes_supported": [*TOP_SCOPES, *sorted(GRANULAR_SCOPES)],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(oauth.GRANT_TYPES),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }
    )
