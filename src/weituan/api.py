"""The REST API roots: /api/v1/ (Mastodon-compatible and native) and /api/v2/ (Mastodon v2 paths).

Every error leaves as JSON: Mastodon's `{"error": message}` plus a stable `code`.
"""

import logging
import sys
from collections.abc import Awaitable, Callable
from inspect import iscoroutinefunction
from typing import Any

import orjson
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import register_converter
from django.utils.decorators import sync_and_async_middleware
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from weituan.core.errors import STORE_OUTAGES, RateLimited, ServiceError, Unavailable, store_unreachable
from weituan.core.ids import MAX_ID, IdConverter
from weituan.core.redis import REDIS_UNREACHABLE, unreachable_logged

log = logging.getLogger(__name__)

# `{id:status_id}` in the routes: a number beyond any id matches no route (the API's 404).
register_converter(IdConverter, "id")


def _error(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, **extra: Any
) -> HttpResponse:
    return api.create_response(request, {"error": message, "code": code, **extra}, status=status)


def json_error(status: int, code: str, message: str) -> HttpResponse:
    return HttpResponse(
        orjson.dumps({"error": message, "code": code}),
        status=status,
        content_type="application/json; charset=utf-8",
    )


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """What a path under the APIs that names no endpoint answers: the API's 404, not a web page.

    Exempt from the CSRF check, as the API's endpoints are: a client's POST with a bearer token (to an
    endpoint this server does not offer, such as a bookmark) must get this JSON 404, not the HTML 403
    of a missing CSRF cookie, which a client can neither read nor act on."""
    return json_error(404, "not_found", "Record not found")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's answer to a request it could not read (a multipart body without its boundary, too many
    fields, a body over the size limit): under the APIs the API's JSON 400 (code `bad_request`), as a
    client can read and act on it, elsewhere the site's page."""
    if request.path.startswith(API_PREFIXES):
        reason = str(exception) or "it is malformed"
        return json_error(400, "bad_request", f"The request could not be read: {reason}")
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's answer to an uncaught error (after logging it): under the APIs the API's JSON 500,
    elsewhere the site's error page. An error that is a store being away (Django calls this while
    handling the error, so it is the one being handled): Redis unreachable, the database's connection
    ended mid-request or the database refusing for now, is not the server failing: 503 with
    `Retry-After`, as JSON under the APIs (code `unavailable`), elsewhere a page saying to try again."""
    if isinstance(sys.exception(), STORE_OUTAGES):
        return unavailable_response(request)
    if request.path.startswith(API_PREFIXES):
        return json_error(500, "server_error", "The server failed to answer this request")
    return defaults.server_error(request)


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 for a request that met an unreachable store: JSON under the APIs and OAuth, else the page."""
    refusal = store_unreachable()
    if request.path.startswith((*API_PREFIXES, "/oauth/")):
        response = json_error(refusal.status, refusal.code, refusal.message)
    else:
        response = defaults.server_error(request, template_name="503.html")
        response.status_code = refusal.status
    for name, value in refusal.headers().items():
        response[name] = value
    return response


def _method_as_json(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if response.status_code != 405 or not request.path.startswith(API_PREFIXES):
        return response
    answer = json_error(405, "method_not_allowed", f"{request.method} is not allowed here")
    if response.has_header("Allow"):
        answer["Allow"] = response["Allow"]
    return answer


API_PREFIXES = ("/api/v1/", "/api/v2/")


@sync_and_async_middleware
def api_method_errors(get_response: Callable[[HttpRequest], Any]) -> Any:
    """An endpoint asked with a method it does not take answers the API's JSON error (with `Allow`),
    as every other API error does; elsewhere responses pass unchanged."""
    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> HttpResponse:
            response: Awaitable[HttpResponse] = get_response(request)
            return _method_as_json(request, await response)

        return middleware_async

    def middleware(request: HttpRequest) -> HttpResponse:
        return _method_as_json(request, get_response(request))

    return middleware


class FastJSONRenderer(JSONRenderer):
    """JSON through orjson (a timeline page renders several times faster than with the json module).

    Datetimes and anything orjson does not know go through ninja's encoder, so they are written
    exactly as before; whatever orjson refuses (an integer beyond 64 bits) falls back to it entirely.
    """

    _options = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> Any:
        try:
            return orjson.dumps(data, default=_ninja_default, option=self._options)
        except orjson.JSONEncodeError:
            return super().render(request, data, response_status=response_status)


_ninja_default = NinjaJSONEncoder().default


# Every refusal of the API: Mastodon's `error` (for a person) and a stable `code` (for a program); some
# refusals add fields of their own (`details` of a 422 names each invalid input). No docstring: the
# document's component is the same as the deals' own `ErrorOut`, which shares its name.
class ErrorOut(Schema):
    error: str
    code: str


class _DocumentedErrors(OpenAPISchema):
    """The OpenAPI document as the API answers: each operation also lists its refusals (any 4xx, and
    503 while a store is away) in the error shape, and an operation that lets anonymous callers in says
    so (`{}` among its security requirements), as clients and generated tests read the document."""

    def responses(self, operation: Operation) -> dict[Any, Any]:
        documented: dict[Any, Any] = super().responses(operation)
        error = {"content": {self.api.renderer.media_type: {"schema": self._error_schema()}}}
        documented.setdefault("4XX", {"description": "Refused: `error` says why, `code` names it", **error})
        documented.setdefault(
            503, {"description": "A store is briefly away: retry after `Retry-After`", **error}
        )
        return documented

    def _error_schema(self) -> dict[str, str]:
        self.add_schema_definitions({"ErrorOut": ErrorOut.model_json_schema(mode="serialization")})
        return {"$ref": "#/components/schemas/ErrorOut"}

    def operation_parameters(self, operation: Operation) -> list[Any]:
        parameters: list[Any] = super().operation_parameters(operation)
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if (
                parameter["in"] == "path"
                and parameter["name"].endswith("_id")
                and schema.get("type") == "integer"
            ):
                schema.update(minimum=0, maximum=MAX_ID)  # the `id` converter's numbers
        return parameters

    def operation_security(self, operation: Operation) -> list[Any] | None:
        security = super().operation_security(operation)
        if security and any(getattr(auth, "lets_anonymous_in", False) for auth in operation.auth_callbacks):
            security.append({})
        return security


class WeituanAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        return _DocumentedErrors(self, path_prefix)


def _bearer_challenge(error: str | None) -> str:
    """RFC 6750's WWW-Authenticate for a 401: `error` names what was wrong with a token that was sent;
    a request that sent none gets the bare challenge."""
    return 'Bearer realm="Weituan"' + (f', error="{error}"' if error else "")


def _install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(ServiceError)
    def service_error(request: HttpRequest, exc: ServiceError) -> HttpResponse:
        response = _error(api, request, exc.status, exc.code, exc.message, **exc.details)
        if exc.status == 401:
            response["WWW-Authenticate"] = _bearer_challenge("invalid_token")
        if isinstance(exc, (RateLimited, Unavailable)):
            for name, value in exc.headers().items():
                response[name] = value
        return response

    def store_error(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
        if isinstance(exc, REDIS_UNREACHABLE):
            unreachable_logged(log, "requests that need it answered 503", exc)
        else:  # kept whole: a lock timeout or a deadlock is worth reading
            error = exc if isinstance(exc, BaseException) else None
            log.error("%s %s: database error; answered 503", request.method, request.path, exc_info=error)
        return service_error(request, store_unreachable())

    for outage in STORE_OUTAGES:
        api.add_exception_handler(outage, store_error)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "payload"))
        message = (
            f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid input"))
        )
        return _error(api, request, 422, "invalid", message, details=exc.errors)

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        response = _error(api, request, 401, "unauthorized", "The access token is invalid or missing")
        response["WWW-Authenticate"] = _bearer_challenge(None)
        return response

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return _error(api, request, 404, "not_found", "Record not found")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return _error(api, request, exc.status_code, "http_error", str(exc))


def build_api_v1() -> NinjaAPI:
    from weituan.deals.api import router as deals_router
    from weituan.mastodon import (
        api_absent_features,
        api_accounts,
        api_apps,
        api_filters,
        api_instance,
        api_lists,
        api_media,
        api_notifications,
        api_relations,
        api_search,
        api_statuses,
        api_streaming,
        api_suggestions,
        api_timelines,
        api_trends,
        api_weituan,
    )
    from weituan.tracking.api import router as tracking_router

    api = WeituanAPI(
        title="Weituan API",
        version="1",
        description="Mastodon-compatible micro-blog API plus Weituan's deals, tracking and insights.",
        urls_namespace="api_v1",
        docs_url="/docs",
        openapi_url="/openapi.json",
        renderer=FastJSONRenderer(),
    )
    _install_error_handlers(api)
    for module in (
        api_instance,
        api_apps,
        api_accounts,
        api_relations,
        api_statuses,
        api_media,
        api_notifications,
        api_timelines,
        api_lists,
        api_search,
        api_trends,
        api_streaming,
        api_suggestions,
        api_filters,
        api_absent_features,
    ):
        api.add_router("/", module.router)
    api.add_router("/weituan/", api_weituan.router)
    api.add_router("/", deals_router)
    api.add_router("/", tracking_router)
    return api


def build_api_v2() -> NinjaAPI:
    from weituan.mastodon import (
        api_filters,
        api_instance,
        api_media,
        api_notification_groups,
        api_search,
        api_suggestions,
    )

    api = WeituanAPI(
        title="Weituan API v2",
        version="2",
        urls_namespace="api_v2",
        docs_url=None,
        openapi_url="/openapi.json",
        renderer=FastJSONRenderer(),
    )
    _install_error_handlers(api)
    api.add_router("/", api_instance.router_v2)
    api.add_router("/", api_media.router_v2)
    api.add_router("/", api_search.router_v2)
    api.add_router("/", api_filters.router_v2)
    api.add_router("/", api_notification_groups.router_v2)
    api.add_router("/", api_suggestions.router_v2)
    return api


api_v1 = build_api_v1()
api_v2 = build_api_v2()
