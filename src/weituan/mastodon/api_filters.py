"""Mastodon API: keyword filters (屏蔽关键词) — v2's filters with their keywords and statuses, and v1's
filters, each one keyword (as Mastodon keeps them for older clients).

Another account's filter, keyword or status is a 404, as an unknown one is. A refused change (an empty
keyword, an unknown context or action, too many keywords) answers 422 with a code and writes nothing.
"""

from typing import Any

from django.http import HttpRequest
from ninja import Router

from weituan.accounts.auth import request_user, scoped_auth
from weituan.core.errors import ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.mastodon.api_statuses import write_limit
from weituan.mastodon.request_params import (
    BOOLEAN,
    ID_TEXT,
    MastodonParams,
    mastodon_params,
    params_documented,
)
from weituan.mastodon.status_filters import (
    filter_json,
    filter_keyword_json,
    filter_status_json,
    filter_v1_json,
)
from weituan.microblog.models import FilterAction, FilterContext
from weituan.microblog.queries import filters as queries
from weituan.microblog.services import filters as services
from weituan.microblog.services.filters import UNCHANGED, KeywordChange

router = Router(tags=["mastodon:filters"])
router_v2 = Router(tags=["mastodon:v2"])

READ_FILTERS = scoped_auth("read", "read:filters")
WRITE_FILTERS = scoped_auth("write", "write:filters")

_CONTEXTS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "enum": FilterContext.values},
}
_ACTION: dict[str, Any] = {"type": "string", "enum": FilterAction.values}
_EXPIRES_IN: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 1, "maximum": services.EXPIRES_IN_MAX},
        {"type": "string", "pattern": "^([1-9][0-9]{0,7})?$"},
    ]
}
# A text parameter with words in it; a JSON number is read as its digits.
_KEYWORD: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": services.KEYWORD_MAX, "pattern": r"\S"},
        {"type": "number"},
    ]
}
_KEYWORD_ATTRIBUTE: dict[str, Any] = {
    "type": "object",
    "properties": {
        name: {"anyOf": [schema, {"type": "null"}]}
        for name, schema in {
            "keyword": _KEYWORD,
            "whole_word": BOOLEAN,
            "id": ID_TEXT,
            "_destroy": BOOLEAN,
        }.items()
    },
}
# An array of keywords, or (as Rails' nested attributes also come) an object of them keyed by index.
_KEYWORD_ATTRIBUTES: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "maxItems": services.FILTER_KEYWORDS_MAX, "items": _KEYWORD_ATTRIBUTE},
        {
            "type": "object",
            "maxProperties": services.FILTER_KEYWORDS_MAX,
            "additionalProperties": _KEYWORD_ATTRIBUTE,
        },
    ]
}
_FILTER_FIELDS: dict[str, Any] = {
    "title": _KEYWORD,
    "context": _CONTEXTS,
    "filter_action": _ACTION,
    "expires_in": _EXPIRES_IN,
    "keywords_attributes": _KEYWORD_ATTRIBUTES,
}
_V1_FIELDS: dict[str, Any] = {
    "phrase": _KEYWORD,
    "context": _CONTEXTS,
    "irreversible": BOOLEAN,
    "whole_word": BOOLEAN,
    "expires_in": _EXPIRES_IN,
}
# Rules across fields or over what is stored, which no schema of one field states: a filter's keywords
# (those kept and those added) and statuses have a most, an account a most of filters, a keyword to change
# must be the filter's own, a status can be filtered once and only one the caller can see.
RULED = "keywords, statuses and filters each have a most; a status is filtered once"


def _writer(request: HttpRequest) -> Any:
    user = request_user(request)
    write_limit(user)
    return user


def _expires_in(params: MastodonParams) -> int | Any | None:
    """`expires_in` in seconds: None (never ends) when sent blank or null, UNCHANGED when left out."""
    if "expires_in" not in params.values:
        return UNCHANGED
    raw = params.text("expires_in")
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(
            "expires_in is a number of seconds", code="filter_expires_in", field="expires_in"
        ) from None


def _flag(item: dict[str, Any], name: str) -> bool | None:
    return MastodonParams(values={name: item.get(name)}).flag(name)


def _keyword_changes(params: MastodonParams) -> list[KeywordChange]:
    changes = []
    for item in params.objects("keywords_attributes") or []:
        raw_id = item.get("id")
        keyword_id = None
        if raw_id is not None:
            text = str(raw_id)
            if not text.isdecimal() or not 0 < int(text) <= MAX_ID:
                raise ValidationFailed("keywords_attributes id must be a keyword id", code="invalid_id")
            keyword_id = int(text)
        keyword = item.get("keyword")
        if isinstance(keyword, (dict, list)):
            raise ValidationFailed("keyword must be text", field="keyword")
        changes.append(
            KeywordChange(
                id=keyword_id,
                keyword=None if keyword is None else str(keyword),
                whole_word=_flag(item, "whole_word"),
                destroy=bool(_flag(item, "_destroy")),
            )
        )
    return changes


def _contexts(params: MastodonParams) -> list[str] | None:
    value = params.values.get("context")
    if value is None:
        return None
    if isinstance(value, (dict, bool)):
        raise ValidationFailed(
            "context must be a list of contexts", code="filter_context_unknown", field="context"
        )
    return [str(item) for item in (value if isinstance(value, list) else [value])]


# --- v2 ---------------------------------------------------------------------------------------------


@router_v2.get("/filters", auth=READ_FILTERS, summary="The caller's filters")
def filters_v2(request: HttpRequest) -> list[dict[str, Any]]:
    return [filter_json(row) for row in queries.filters_of(request_user(request).pk)]


@router_v2.post(
    "/filters",
    auth=WRITE_FILTERS,
    openapi_extra=params_documented(_FILTER_FIELDS, required=("title", "context")),
    summary="Make a filter",
)
def filter_create(request: HttpRequest) -> dict[str, Any]:
    user = _writer(request)
    params = mastodon_params(request)
    changes = _keyword_changes(params)
    if any(change.id is not None or change.destroy for change in changes):
        raise ValidationFailed("A new filter's keywords have no id", code="filter_keyword_unknown")
    expires_in = _expires_in(params)
    row = services.filter_create(
        owner=user,
        title=params.text("title"),
        contexts=_contexts(params) or [],
        action=params.text("filter_action"),
        expires_in=None if expires_in is UNCHANGED else expires_in,  # left out: never ends
        keywords=[(change.keyword, change.whole_word is not False) for change in changes],
    )
    return filter_json(row)


@router_v2.get("/filters/{id:filter_id}", auth=READ_FILTERS, summary="One of the caller's filters")
def filter_one(request: HttpRequest, filter_id: int) -> dict[str, Any]:
    return filter_json(queries.filter_get_for_user(request_user(request), filter_id))


@router_v2.put(
    "/filters/{id:filter_id}",
    auth=WRITE_FILTERS,
    openapi_extra=params_documented(_FILTER_FIELDS),
    summary="Change a filter; keywords_attributes adds, changes (id) and removes (_destroy) keywords",
)
def filter_update(request: HttpRequest, filter_id: int) -> dict[str, Any]:
    user = _writer(request)
    params = mastodon_params(request)
    row = services.filter_update(
        owner=user,
        filter_id=filter_id,
        title=params.text("title"),
        contexts=_contexts(params),
        action=params.text("filter_action"),
        expires_in=_expires_in(params),
        keywords=_keyword_changes(params),
    )
    return filter_json(row)


@router_v2.delete("/filters/{id:filter_id}", auth=WRITE_FILTERS, summary="Remove a filter")
def filter_delete(request: HttpRequest, filter_id: int) -> dict[str, Any]:
    services.filter_delete(owner=_writer(request), filter_id=filter_id)
    return {}


@router_v2.get("/filters/{id:filter_id}/keywords", auth=READ_FILTERS, summary="A filter's keywords")
def filter_keywords(request: HttpRequest, filter_id: int) -> list[dict[str, Any]]:
    row = queries.filter_get_for_user(request_user(request), filter_id)
    return [filter_keyword_json(word) for word in row.keywords.all()]


@router_v2.post(
    "/filters/{id:filter_id}/keywords",
    auth=WRITE_FILTERS,
    openapi_extra=params_documented({"keyword": _KEYWORD, "whole_word": BOOLEAN}, required=("keyword",)),
    summary="Add a keyword to a filter",
)
def filter_keyword_add(request: HttpRequest, filter_id: int) -> dict[str, Any]:
    user = _writer(request)
    params = mastodon_params(request)
    word = services.filter_keyword_add(
        owner=user,
        filter_id=filter_id,
        keyword=params.text("keyword"),
        whole_word=params.flag("whole_word") is not False,
    )
    return filter_keyword_json(word)


# Mastodon's paths are /filters/keywords/:id; /filter_keywords/:id is the same, under a name of its own.
@router_v2.get("/filter_keywords/{id:keyword_id}", auth=READ_FILTERS, include_in_schema=False)
@router_v2.get("/filters/keywords/{id:keyword_id}", auth=READ_FILTERS, summary="One filter keyword")
def filter_keyword_one(request: HttpRequest, keyword_id: int) -> dict[str, Any]:
    return filter_keyword_json(queries.filter_keyword_get_for_user(request_user(request), keyword_id))


_KEYWORD_CHANGE = params_documented({"keyword": _KEYWORD, "whole_word": BOOLEAN})


@router_v2.put(
    "/filter_keywords/{id:keyword_id}",
    auth=WRITE_FILTERS,
    openapi_extra=_KEYWORD_CHANGE,
    include_in_schema=False,
)
@router_v2.put(
    "/filters/keywords/{id:keyword_id}",
    auth=WRITE_FILTERS,
    openapi_extra=_KEYWORD_CHANGE,
    summary="Change a keyword",
)
def filter_keyword_update(request: HttpRequest, keyword_id: int) -> dict[str, Any]:
    user = _writer(request)
    params = mastodon_params(request)
    word = services.filter_keyword_update(
        owner=user,
        keyword_id=keyword_id,
        keyword=params.text("keyword"),
        whole_word=params.flag("whole_word"),
    )
    return filter_keyword_json(word)


@router_v2.delete("/filter_keywords/{id:keyword_id}", auth=WRITE_FILTERS, include_in_schema=False)
@router_v2.delete("/filters/keywords/{id:keyword_id}", auth=WRITE_FILTERS, summary="Remove a keyword")
def filter_keyword_delete(request: HttpRequest, keyword_id: int) -> dict[str, Any]:
    services.filter_keyword_delete(owner=_writer(request), keyword_id=keyword_id)
    return {}


@router_v2.get("/filters/{id:filter_id}/statuses", auth=READ_FILTERS, summary="The statuses a filter holds")
def filter_statuses(request: HttpRequest, filter_id: int) -> list[dict[str, Any]]:
    row = queries.filter_get_for_user(request_user(request), filter_id)
    return [filter_status_json(status) for status in row.statuses.all()]


@router_v2.post(
    "/filters/{id:filter_id}/statuses",
    auth=WRITE_FILTERS,
    openapi_extra=params_documented({"status_id": ID_TEXT}, required=("status_id",)),
    summary="Filter one status (and its plain reposts)",
)
def filter_status_add(request: HttpRequest, filter_id: int) -> dict[str, Any]:
    user = _writer(request)
    raw = mastodon_params(request).text("status_id") or ""
    if not raw.isdecimal() or not 0 < int(raw) <= MAX_ID:
        raise ValidationFailed("status_id must be a status id", code="invalid_id", field="status_id")
    row = services.filter_status_add(owner=user, filter_id=filter_id, post_id=int(raw))
    return filter_status_json(row)


@router_v2.get("/filters/statuses/{id:filter_status_id}", auth=READ_FILTERS, summary="One filtered status")
def filter_status_one(request: HttpRequest, filter_status_id: int) -> dict[str, Any]:
    return filter_status_json(queries.filter_status_get_for_user(request_user(request), filter_status_id))


@router_v2.delete(
    "/filters/statuses/{id:filter_status_id}", auth=WRITE_FILTERS, summary="Stop filtering a status"
)
def filter_status_delete(request: HttpRequest, filter_status_id: int) -> dict[str, Any]:
    services.filter_status_delete(owner=_writer(request), filter_status_id=filter_status_id)
    return {}


# --- v1 ---------------------------------------------------------------------------------------------


@router.get("/filters", auth=READ_FILTERS, summary="The caller's filters, v1 (one per keyword)")
def filters_v1(request: HttpRequest) -> list[dict[str, Any]]:
    return [filter_v1_json(word) for word in queries.filter_keywords_of(request_user(request))]


@router.post(
    "/filters",
    auth=WRITE_FILTERS,
    openapi_extra=params_documented(_V1_FIELDS, required=("phrase", "context")),
    summary="Make a filter of one keyword (v1)",
)
def filter_v1_create(request: HttpRequest) -> dict[str, Any]:
    user = _writer(request)
    params = mastodon_params(request)
    expires_in = _expires_in(params)
    word = services.filter_v1_create(
        owner=user,
        phrase=params.text("phrase"),
        contexts=_contexts(params) or [],
        hide=bool(params.flag("irreversible")),
        whole_word=params.flag("whole_word") is not False,
        expires_in=None if expires_in is UNCHANGED else expires_in,  # left out: never ends
    )
    return filter_v1_json(word)


@router.get("/filters/{id:keyword_id}", auth=READ_FILTERS, summary="One filter, v1")
def filter_v1_one(request: HttpRequest, keyword_id: int) -> dict[str, Any]:
    return filter_v1_json(queries.filter_keyword_get_for_user(request_user(request), keyword_id))


@router.put(
    "/filters/{id:keyword_id}",
    auth=WRITE_FILTERS,
    openapi_extra=params_documented(_V1_FIELDS),
    summary="Change a filter, v1",
)
def filter_v1_update(request: HttpRequest, keyword_id: int) -> dict[str, Any]:
    user = _writer(request)
    params = mastodon_params(request)
    irreversible = params.flag("irreversible")
    word = services.filter_v1_update(
        owner=user,
        keyword_id=keyword_id,
        phrase=params.text("phrase"),
        contexts=_contexts(params),
        hide=irreversible,
        whole_word=params.flag("whole_word"),
        expires_in=_expires_in(params),
    )
    return filter_v1_json(word)


@router.delete("/filters/{id:keyword_id}", auth=WRITE_FILTERS, summary="Remove a filter, v1")
def filter_v1_delete(request: HttpRequest, keyword_id: int) -> dict[str, Any]:
    services.filter_v1_delete(owner=_writer(request), keyword_id=keyword_id)
    return {}
