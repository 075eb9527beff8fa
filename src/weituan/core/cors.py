"""Cross-origin access to the APIs, as Mastodon grants it, so browser clients served from other sites
(Elk, Phanpy, the Mastodon web apps) can call Weituan.

Every origin may call the APIs and the OAuth token endpoints, without credentials: `*` is sent, never
Access-Control-Allow-Credentials, so a browser does not send (nor let a page read the answer to) the
site's cookies across origins; a client authenticates with its bearer token. The headers clients page
and pace by (Link, the rate limit's) are exposed to them.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

API_PREFIXES = ("/api/v1/", "/api/v2/")
OAUTH_PATHS = frozenset({"/oauth/token", "/oauth/revoke"})
DISCOVERY_PATHS = frozenset({"/.well-known/oauth-authorization-server"})
API_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
EXPOSED_HEADERS = (
    "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id, Idempotency-Key"
)
# How long a browser may keep a preflight's answer (rack-cors's default, which Mastodon uses).
PREFLIGHT_MAX_AGE = "7200"


def cors_methods(path: str) -> str | None:
    """The methods other origins may use on `path`, or None where cross-origin access is not granted."""
    if path.startswith(API_PREFIXES):
        return API_METHODS
    if path in OAUTH_PATHS:
        return "POST, OPTIONS"
    if path in DISCOVERY_PATHS:
        return "GET, OPTIONS"
    return None


class ApiCorsMiddleware(MiddlewareMixin):
    """Answers a CORS preflight for the API paths itself, and marks their answers to a cross-origin
    request as readable by it. First in settings.MIDDLEWARE, so a preflight never reaches a view, a
    CSRF check or an authentication (it carries no token), and every answer leaves through it."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if request.method != "OPTIONS" or "Origin" not in request.headers:
            return None
        methods = cors_methods(request.path_info)
        if methods is None or "Access-Control-Request-Method" not in request.headers:
            return None
        response = HttpResponse(status=200)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = methods
        asked = request.headers.get("Access-Control-Request-Headers")
        if asked:
            response["Access-Control-Allow-Headers"] = asked
        response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        if "Origin" in request.headers and cors_methods(request.path_info) is not None:
            response["Access-Control-Allow-Origin"] = "*"
            response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
