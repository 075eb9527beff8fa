"""Mastodon-style paging by id: `max_id` / `since_id` / `min_id` / `limit`, and the `Link` header.

Mastodon pages newest first. `max_id` returns items older than it, `since_id` the newest items newer
than it, `min_id` the items immediately newer than it (the page just above, still shown newest first).
The `Link` header points `rel="next"` at older items (`max_id` of the last item) and `rel="prev"` at newer
ones (`min_id` of the first item), keeping every other query parameter of the request.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, QueryDict

from weituan.core.errors import ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.mastodon.serializers_accounts import absolute_url

DEFAULT_LIMIT = 20
MAX_LIMIT = 40
_CURSOR_PARAMS = ("max_id", "since_id", "min_id")
_CURSOR_MEANINGS = {
    "max_id": "items older than this id",
    "since_id": "the newest items newer than this id",
    "min_id": "the items just newer than this id",
}
# The paging parameters as the OpenAPI documents state them (the `openapi_extra` of a paged route): ids
# are Mastodon's strings of digits (anything else is `invalid_cursor`), `limit` a whole number from 1
# (`invalid_limit` else; above the list's largest page, that page is given).
PAGE_QUERY: dict[str, Any] = {
    "parameters": [
        {
            "in": "query",
            "name": "limit",
            "required": False,
            "schema": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": [""]}]},
            "description": "how many items (left empty: the list's own number); a number above the"
            " list's largest page gives that page",
        },
        *(
            {
                "in": "query",
                "name": name,
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]*$"},
                "description": meaning,
            }
            for name, meaning in _CURSOR_MEANINGS.items()
        ),
    ]
}


@dataclass(frozen=True, slots=True)
class PageParams:
    """A validated page request; every bound is exclusive and None when absent."""

    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = DEFAULT_LIMIT

    def bounds(self) -> "PageBounds":
        """The page as the keyword arguments every paged read takes."""
        return {"max_id": self.max_id, "since_id": self.since_id, "min_id": self.min_id, "limit": self.limit}


class PageBounds(TypedDict):
    max_id: int | None
    since_id: int | None
    min_id: int | None
    limit: int


def _as_id(name: str, value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationFailed(f"{name} must be an integer id", code="invalid_cursor") from None
    if number < 0:
        raise ValidationFailed(f"{name} must not be negative", code="invalid_cursor")
    # No id is larger: "older than" such a number is everything, "newer than" it nothing.
    return min(number, MAX_ID)


def page_params(
    *,
    max_id: object = None,
    since_id: object = None,
    min_id: object = None,
    limit: object = None,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
) -> PageParams:
    """Parse the paging parameters; a limit above `max_limit` is lowered to it, as Mastodon does."""
    if limit is None or limit == "":
        size = default_limit
    else:
        try:
            size = int(str(limit))
        except ValueError:
            raise ValidationFailed("limit must be an integer", code="invalid_limit") from None
        if size < 1:
            raise ValidationFailed("limit must be at least 1", code="invalid_limit")
    return PageParams(
        max_id=_as_id("max_id", max_id),
        since_id=_as_id("since_id", since_id),
        min_id=_as_id("min_id", min_id),
        limit=min(size, max_limit),
    )


def page_params_from_request(
    request: HttpRequest, *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT
) -> PageParams:
    """The same as `page_params`, read straight from the query string."""
    return _page_of(request.GET, default_limit=default_limit, max_limit=max_limit)


def _page_of(
    query: QueryDict, *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT
) -> PageParams:
    return page_params(
        max_id=query.get("max_id"),
        since_id=query.get("since_id"),
        min_id=query.get("min_id"),
        limit=query.get("limit"),
        default_limit=default_limit,
        max_limit=max_limit,
    )


def _kept_params(query: QueryDict) -> str:
    """The query's parameters other than the cursors, as the `Link` header repeats them."""
    return urlencode(
        [(key, item) for key, values in query.lists() if key not in _CURSOR_PARAMS for item in values]
    )


class QueryPage:
    """What a page request's query string says, kept per query string: the page asked for, and the
    `Link` header's other parameters. The same strings come back (a client's first page, its polls),
    and Django's QueryDict is the costly part of reading them."""

    def __init__(self, *, size: int = 512) -> None:
        self.size = size
        self._kept: dict[str | bytes, tuple[PageParams, str]] = {}

    def forget(self) -> None:
        self._kept.clear()

    def of(self, raw: str | bytes) -> tuple[PageParams, str]:
        """The page and the kept parameters of a raw query string: a WSGI one (ISO-8859-1 text, as
        PEP 3333 passes it) or an ASGI one (bytes). Raises ValidationFailed as `page_params` does, and
        UnicodeDecodeError for ASGI bytes that are not UTF-8 (Django refuses those)."""
        found = self._kept.get(raw)
        if found is None:
            text = raw.decode() if isinstance(raw, bytes) else raw.encode("iso-8859-1")
            query = QueryDict(text)
            found = (_page_of(query), _kept_params(query))
            if len(self._kept) >= self.size:
                self._kept.clear()
            self._kept[raw] = found
        return found


def link_header(request: HttpRequest, *, next_max_id: int | None, prev_min_id: int | None) -> str | None:
    """The `Link` header value for a page, or None when the page is empty."""
    return link_header_of(
        absolute_url(request.path, request),
        _kept_params(request.GET),
        next_max_id=next_max_id,
        prev_min_id=prev_min_id,
    )


def link_header_of(url: str, kept: str, *, next_max_id: int | None, prev_min_id: int | None) -> str | None:
    """The `Link` header value for a page of the absolute `url` whose other parameters are `kept`
    (urlencoded), or None when the page is empty."""
    if next_max_id is None and prev_min_id is None:
        return None
    # Both links share the absolute path and the request's other parameters; only the cursor differs.
    base = url + "?"
    if kept:
        base += kept + "&"
    parts = []
    if next_max_id is not None:
        parts.append(f'<{base}max_id={int(next_max_id)}>; rel="next"')
    if prev_min_id is not None:
        parts.append(f'<{base}min_id={int(prev_min_id)}>; rel="prev"')
    return ", ".join(parts)


def set_link_header(response: HttpResponse, request: HttpRequest, ids: Sequence[int]) -> None:
    """Set `Link` on `response` for a page whose items carry `ids`, newest first."""
    if not ids:
        return
    value = link_header(request, next_max_id=ids[-1], prev_min_id=ids[0])
    if value:
        response["Link"] = value


def set_offset_link_header(
    response: HttpResponse, request: HttpRequest, *, offset: int, limit: int, count: int
) -> None:
    """Set `Link` on `response` for a page of lists paged by `offset` (trends), as Mastodon links them:
    `next` when the page came full, `prev` when it did not start at the beginning."""
    kept = urlencode(
        [(key, item) for key, values in request.GET.lists() if key != "offset" for item in values]
    )
    base = absolute_url(request.path, request) + "?" + (kept + "&" if kept else "")
    parts = []
    if count >= limit:
        parts.append(f'<{base}offset={offset + limit}>; rel="next"')
    if offset > 0:
        parts.append(f'<{base}offset={max(offset - limit, 0)}>; rel="prev"')
    if parts:
        response["Link"] = ", ".join(parts)
