"""What a request sends as text: its form fields whatever the method, and whether any of it holds a NUL.

PostgreSQL refuses the NUL character (U+0000) in text, so a NUL anywhere a request's values come
from (its path, query string, headers, a form's fields, a JSON body's strings and keys) is refused as
a whole before any of it is used (see `weituan.middleware.NulCharactersMiddleware`). Uploaded files
are bytes, not text: their contents are not looked at.
"""

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, QueryDict

NUL = "\x00"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
# How a NUL is written in a query string or a form (raw or percent-encoded) and in JSON (escaped).
_PERCENT_NUL = b"%00"
_JSON_NUL = b"\\u0000"


def raw_may_hold_nul(data: bytes) -> bool:
    """Whether a raw query string or body of a form or JSON may hold a NUL: as a byte, percent-encoded or
    JSON-escaped. A no is certain; a yes may not be (`\\\\u0000` is a backslash and "u0000"), and whoever
    must be sure reads the values (Django does, for the front paths that hand such requests to it)."""
    return 0 in data or _PERCENT_NUL in data or _JSON_NUL in data


def query_holds_nul(query: str | bytes) -> bool:
    """Whether a raw query string holds a NUL (percent-decoding turns any `%00` into one): exact."""
    if isinstance(query, str):
        return "%00" in query or NUL in query
    return _PERCENT_NUL in query or 0 in query


def form_fields(request: HttpRequest) -> QueryDict:
    """request.POST, filled from a form body whatever the method: Django fills it (and request.FILES)
    only for POST (Django ticket #12635), and Mastodon clients PATCH and PUT forms too. Read once."""
    if (
        request.method != "POST"
        and request.content_type in FORM_TYPES
        and not getattr(request, "_form_fields_read", False)
    ):
        original = request.method
        request.method = "POST"
        try:
            request._load_post_and_files()  # type: ignore[attr-defined]
        finally:
            request.method = original
        request._form_fields_read = True  # type: ignore[attr-defined]
    return request.POST


def _json_holds_nul(data: Any) -> bool:
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            for key, value in item.items():
                if NUL in key:
                    return True
                pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _form_holds_nul(fields: QueryDict) -> bool:
    return any(NUL in key or any(NUL in value for value in values) for key, values in fields.lists())


def nul_outside_body(request: HttpRequest) -> str | None:
    """Where a NUL is in the request's path, query string, headers or cookies ("path", "query string",
    "headers", "cookies"), or None."""
    if NUL in request.path_info:
        return "path"
    if query_holds_nul(request.META.get("QUERY_STRING", "")):
        return "query string"
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return "headers"
    # A cookie's quoted value may spell a NUL as an escape (`"\\000"`), made one by its parsing.
    for name, value in request.COOKIES.items():
        if NUL in name or NUL in value:
            return "cookies"
    return None


def body_parsed_for_nul(request: HttpRequest) -> bool:
    """Whether finding a NUL in the body means parsing a multipart form (best off the event loop)."""
    return request.content_type == "multipart/form-data"


def nul_in_body(request: HttpRequest) -> str | None:
    """Where a NUL is in the request's body ("form" or "body"), or None.

    A multipart form's text fields (and the names of its fields) are read as the view would read them;
    its files are not looked at. Any other body is read raw when it is small enough for the view to
    read it whole (DATA_UPLOAD_MAX_MEMORY_SIZE) and not compressed: a form by its encoded values, and
    anything else as JSON if it holds an escaped NUL (a body that is not JSON is the view's to refuse).
    """
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        fields = form_fields(request)
        if _form_holds_nul(fields) or any(NUL in name for name in request.FILES):
            return "form"
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = request.META.get("CONTENT_LENGTH")
    if declared in (None, ""):
        length = _unannounced_length(request)  # a chunked body, which the view reads all the same
    else:
        try:
            length = int(declared)
        except ValueError:
            return None  # Django reads no body
    if length <= 0 or (limit is not None and length > limit):
        return None
    if request.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    body = request.body
    if content_type == "application/x-www-form-urlencoded":
        return "form" if query_holds_nul(body) else None
    if _JSON_NUL in body:
        try:
            data = json.loads(body)  # as the endpoints read it (orjson refuses integers past 64 bits)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            return None
        if _json_holds_nul(data):
            return "body"
    return None


def _unannounced_length(request: HttpRequest) -> int:
    """The size of a body sent without a Content-Length (chunked): under ASGI Django has received it
    whole into a file before the view runs, and the view reads it as any other; under WSGI Django reads
    no body without a length, so there is nothing for the view to read. 0 when unknown."""
    if "HTTP_TRANSFER_ENCODING" not in request.META:
        return 0
    stream = getattr(request, "_stream", None)  # ASGIRequest's received body
    if stream is None or not hasattr(stream, "seek") or getattr(request, "_read_started", False):
        return 0
    try:
        position = stream.tell()
        size = stream.seek(0, 2)
        stream.seek(position)
    except (OSError, ValueError):
        return 0
    return int(size - position)
