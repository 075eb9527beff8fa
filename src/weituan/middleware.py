"""Middleware of the whole site: static files served by WhiteNoise on the ASGI event loop too, the
refusal of a request that sends a NUL character, and telling a page's htmx request that its session ended.

WhiteNoise's own middleware is sync-only, and one sync-only member makes Django's ASGI handler switch
every request to a worker thread and back around it, on top of the switch for the view. The one here
answers the (rare) static file in a thread and passes everything else straight through, so the
stack stays async and a request costs a single switch, for its view.
"""

from inspect import iscoroutinefunction, markcoroutinefunction
from typing import Any
from urllib.parse import quote, urlsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.translation import gettext as _
from whitenoise.middleware import WhiteNoiseMiddleware

from weituan.core.request_text import body_parsed_for_nul, nul_in_body, nul_outside_body


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any = None) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._async_call(request)
        return super().__call__(request)

    async def _async_call(self, request: HttpRequest) -> Any:
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)


class NulCharactersMiddleware:
    """Refuses a request that sends a NUL character (U+0000) in any of its text: its path, query string,
    headers, form fields or JSON body (see `core.request_text`). PostgreSQL cannot store it, and no text
    a person writes holds one. The API answers 422 `invalid_characters` in its error shape (the OAuth
    endpoints in theirs), pages a 400 page.

    Placed last in settings.MIDDLEWARE: the middleware before it read none of the request's values (the
    session, the user and messages are loaded lazily, the CSRF check runs after every middleware), and
    the refusal leaves through all of them, so it carries the headers every answer carries. The front
    paths (`core.front`) hand such requests to Django, so this answers them too.

    Runs on the event loop under ASGI; only a multipart form is parsed on a thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._async_call(request)
        where = nul_outside_body(request) or nul_in_body(request)
        if where is not None:
            return nul_refused(request, where)
        return self.get_response(request)

    async def _async_call(self, request: HttpRequest) -> Any:
        where = nul_outside_body(request)
        if where is None:
            if body_parsed_for_nul(request):
                where = await sync_to_async(nul_in_body)(request)
            else:
                where = nul_in_body(request)
        if where is not None:
            return nul_refused(request, where)
        return await self.get_response(request)


def nul_refused(request: HttpRequest, where: str) -> HttpResponse:
    """The answer to a request with a NUL in its `where` ("path", "query string", "headers", "form",
    "body")."""
    from weituan.api import json_error
    from weituan.web.responses import is_htmx

    message = f"The request's {where} contains a NUL character (U+0000), which is not accepted"
    path = request.path_info
    if path.startswith("/api/"):
        return json_error(422, "invalid_characters", message)
    if path.startswith("/oauth/") and path != "/oauth/authorize":
        # The token and revocation endpoints answer in OAuth 2's shape (RFC 6749, 5.2), as their
        # other refusals do: a client reads `error`.
        from weituan.accounts.oauth import OAuthError
        from weituan.accounts.views_oauth import oauth_error_response

        return oauth_error_response(OAuthError("invalid_request", message, code="invalid_characters"))
    text = _("This contains a character that cannot be used (a NUL, U+0000). Remove it and try again.")
    if is_htmx(request):
        response = render(request, "web/_flash.html", {"flash_error": text}, status=400)
        response["HX-Retarget"] = "#flash"
        response["HX-Reswap"] = "innerHTML"
        return response
    # Shown as to a visitor: the session, the user and their messages stay unread.
    context = {"message": text, "user": AnonymousUser(), "messages": ()}
    return render(request, "web/invalid_characters.html", context, status=400)


class HtmxLoginMiddleware:
    """A tap on a page (like, comment, repost, post, follow) whose session has ended meanwhile (logged out
    in another tab, expired) gets Django's redirect to the login page. htmx would follow it and swap the
    whole login page into the post card or the timeline; instead the page's flash area says so, with a
    link to log in and come back to the page, and what the form held stays in it (a refusal, 401).

    Runs on the event loop under ASGI, as the view's answer passes through."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._async_call(request)
        return self._checked(request, self.get_response(request))

    async def _async_call(self, request: HttpRequest) -> Any:
        return self._checked(request, await self.get_response(request))

    def _checked(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code != 302 or request.headers.get("HX-Request") != "true":
            return response
        login_path = resolve_url(settings.LOGIN_URL)
        if urlsplit(response.get("Location", "")).path != login_path:
            return response
        # Back to the page the tap was made on (htmx names it), not to the address the tap posted to.
        page = urlsplit(request.headers.get("HX-Current-URL", ""))
        here = page.path + (f"?{page.query}" if page.query else "") if page.path.startswith("/") else "/"
        login_url = f"{login_path}?next={quote(here, safe='/')}"
        refusal = render(request, "web/_login_needed.html", {"login_url": login_url}, status=401)
        refusal["HX-Retarget"] = "#flash"
        refusal["HX-Reswap"] = "innerHTML"
        return refusal
