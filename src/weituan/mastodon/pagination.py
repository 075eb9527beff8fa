"""Mastodon-style paging by id: `max_id` / `since_id` / `min_id` / `limit`, and the `Link` header.

Mastodon pages newest first. `max_id` returns items older than it, `since_id` the newest items newer
than it, `min_id` the items immediately newer than it (the page just above, still shown newest first).
The `Link` header points `rel="next"` at older items (`max_id` of the last item) and `rel="prev"` at newer
ones (`min_id` of the first item), keeping every other query parameter of the request.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from weituan.core.errors import ValidationFailed
from weituan.mastodon.serializers_accounts import absolute_url

DEFAULT_LIMIT = 20
MAX_LIMIT = 40
_CURSOR_PARAMS = ("max_id", "since_id", "min_id")


@dataclass(frozen=True, slots=True)
class PageParams:
    """A validated page request; every bound is exclusive and None when absent."""

    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    limit: int = DEFAULT_LIMIT


def _as_id(name: str, value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationFailed(f"{name} must be an integer id", code="invalid_cursor") from None
    if number < 0:
        raise ValidationFailed(f"{name} must not be negative", code="invalid_cursor")
    return number


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
    query = request.GET
    return page_params(
        max_id=query.get("max_id"),
        since_id=query.get("since_id"),
        min_id=query.get("min_id"),
        limit=query.get("limit"),
        default_limit=default_limit,
        max_limit=max_limit,
    )


def link_header(request: HttpRequest, *, next_max_id: int | None, prev_min_id: int | None) -> str | None:
    """The `Link` header value for a page, or None when the page is empty."""
    if next_max_id is None and prev_min_id is None:
        return None
    # Both links share the absolute path and the request's other parameters; only the cursor differs.
    base = absolute_url(request.path, request) + "?"
    kept = urlencode(
        [(key, item) for key, values in request.GET.lists() if key not in _CURSOR_PARAMS for item in values]
    )
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
