"""Mastodon API: lists (Weibo's 分组), their accounts, the lists holding an account, and a list's
timeline.

A list is its owner's alone: someone else's answers 404, as one that does not exist. Its accounts are
accounts the owner follows (an unfollow or a block takes them out). Mastodon's `exclusive` is refused
when true (422 `exclusive_not_supported`): members' posts always stay in the home timeline here.
`replies_policy` is kept and answered; comments (Mastodon's replies) never enter timelines here, so it
changes no page.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from weituan.accounts.auth import request_user
from weituan.accounts.queries import user_get
from weituan.core.errors import ValidationFailed
from weituan.core.idempotency import idempotent_call, request_fingerprint
from weituan.core.ids import MAX_ID
from weituan.core.ratelimit import user_relations_hit
from weituan.mastodon.api_relations import accounts_page
from weituan.mastodon.endpoint_auth import READ_LISTS, WRITE_LISTS
from weituan.mastodon.pagination import PAGE_QUERY, page_params_from_request, set_link_header
from weituan.mastodon.request_params import (
    BOOLEAN,
    ID_TEXT,
    TEXT,
    mastodon_params,
    params_documented,
)
from weituan.mastodon.serializers_statuses import timeline_statuses_json
from weituan.mastodon.status_filters import statuses_filtered_for
from weituan.microblog.models import FilterContext, FollowList, RepliesPolicy
from weituan.microblog.queries.lists import (
    follow_list_for_owner,
    follow_list_members_page,
    follow_lists_of,
    follow_lists_with_account,
)
from weituan.microblog.queries.relations import hidden_author_ids
from weituan.microblog.services import lists as list_services
from weituan.microblog.timelines.lists import list_timeline_ids
from weituan.tracking import facade as tracking

router = Router(tags=["mastodon:lists"])

_TITLE = {
    **TEXT,
    "description": f"the list's name: not blank, at most {list_services.LIST_TITLE_MAX} characters",
}
_REPLIES_POLICY = {"type": "string", "enum": list(RepliesPolicy.values)}
_EXCLUSIVE = {
    **BOOLEAN,
    "description": "only false: exclusive lists are not offered (422 exclusive_not_supported)",
}
_ACCOUNT_IDS = {
    "type": "array",
    "items": ID_TEXT,
    "minItems": 1,
    "description": f"accounts the caller follows, at most {list_services.LIST_MEMBERS_MAX} in a list",
}
LIST_PARAMETERS = params_documented(
    {"title": _TITLE, "replies_policy": _REPLIES_POLICY, "exclusive": _EXCLUSIVE}, required=("title",)
)
LIST_UPDATE_PARAMETERS = params_documented(
    {"title": _TITLE, "replies_policy": _REPLIES_POLICY, "exclusive": _EXCLUSIVE}
)
ACCOUNTS_PARAMETERS = params_documented({"account_ids": _ACCOUNT_IDS}, required=("account_ids",))


def list_json(follow_list: FollowList) -> dict[str, Any]:
    """Mastodon's List entity."""
    return {
        "id": str(follow_list.pk),
        "title": follow_list.title,
        "replies_policy": follow_list.replies_policy,
        "exclusive": bool(follow_list.exclusive),
    }


def _writer(request: HttpRequest) -> Any:
    """The caller, counted against the write rate limit of relations (a list groups follows)."""
    user = request_user(request)
    user_relations_hit(user)
    return user


def _account_id(item: Any) -> int:
    """One of `account_ids[]`: digits, or a JSON whole number (2.0 is 2). A number beyond any id names
    no account, and is kept as one that is not found."""
    if isinstance(item, float) and item.is_integer():
        number = int(item)
    elif isinstance(item, int) and not isinstance(item, bool):
        number = item
    elif isinstance(item, str) and item.isascii() and item.isdecimal():
        number = int(item)
    else:
        raise ValidationFailed("account_ids[] must be account ids", code="invalid_id", field="account_ids")
    if number < 0:
        raise ValidationFailed("account_ids[] must be account ids", code="invalid_id", field="account_ids")
    return min(number, MAX_ID)


def _account_ids(request: HttpRequest) -> list[int]:
    """`account_ids[]` from the query string, a form or a JSON array (or one id given bare)."""
    raw = mastodon_params(request).values.get("account_ids")
    items = raw if isinstance(raw, list) else [] if raw is None or raw == "" else [raw]
    return [_account_id(item) for item in items]


@router.get("/lists", auth=READ_LISTS, summary="The caller's lists")
def lists(request: HttpRequest) -> list[dict[str, Any]]:
    return [list_json(follow_list) for follow_list in follow_lists_of(request_user(request).pk)]


@router.post("/lists", auth=WRITE_LISTS, openapi_extra=LIST_PARAMETERS, summary="Make a list")
def list_create(request: HttpRequest) -> dict[str, Any]:
    """A new, empty list. A retry with the same `Idempotency-Key` answers the list made first."""
    user = _writer(request)
    params = mastodon_params(request)
    title, policy, exclusive = params.text("title"), params.text("replies_policy"), params.flag("exclusive")

    def create() -> tuple[int, Any]:
        made = list_services.follow_list_create(
            owner=user, title=title, replies_policy=policy, exclusive=exclusive
        )
        return 200, list_json(made)

    _, body = idempotent_call(
        scope=f"lists:user:{user.pk}",
        key=request.headers.get("Idempotency-Key"),
        fingerprint=request_fingerprint("POST /lists", title, policy, exclusive),
        run=create,
    )
    return dict(body)


@router.get("/lists/{id:list_id}", auth=READ_LISTS, summary="One of the caller's lists")
def list_one(request: HttpRequest, list_id: int) -> dict[str, Any]:
    return list_json(follow_list_for_owner(request_user(request).pk, list_id))


@router.put(
    "/lists/{id:list_id}", auth=WRITE_LISTS, openapi_extra=LIST_UPDATE_PARAMETERS, summary="Change a list"
)
def list_update(request: HttpRequest, list_id: int) -> dict[str, Any]:
    """Rename the list or change its replies policy; a parameter left out stays as it was."""
    user = _writer(request)
    params = mastodon_params(request)
    changed = list_services.follow_list_update(
        owner=user,
        list_id=list_id,
        title=params.text("title"),
        replies_policy=params.text("replies_policy"),
        exclusive=params.flag("exclusive"),
    )
    return list_json(changed)


@router.delete("/lists/{id:list_id}", auth=WRITE_LISTS, summary="Delete a list")
def list_delete(request: HttpRequest, list_id: int) -> dict[str, Any]:
    """The list goes; its accounts stay followed."""
    list_services.follow_list_delete(owner=_writer(request), list_id=list_id)
    return {}


@router.get(
    "/lists/{id:list_id}/accounts",
    auth=READ_LISTS,
    openapi_extra=PAGE_QUERY,
    summary="The accounts in a list",
)
def list_accounts(request: HttpRequest, response: HttpResponse, list_id: int) -> list[dict[str, Any]]:
    """The last added first, 40 a page (at most 80), paged through `Link` by when each was added."""
    follow_list = follow_list_for_owner(request_user(request).pk, list_id)
    page = page_params_from_request(request, default_limit=40, max_limit=80)
    return accounts_page(request, response, follow_list_members_page(follow_list.pk, **page.bounds()))


@router.post(
    "/lists/{id:list_id}/accounts",
    auth=WRITE_LISTS,
    openapi_extra=ACCOUNTS_PARAMETERS,
    summary="Add accounts the caller follows to a list",
)
def list_accounts_add(request: HttpRequest, list_id: int) -> dict[str, Any]:
    """All of `account_ids[]` join, or none does: an unknown account is 404 `account_not_found`, one the caller does not
    follow 422 `not_following`, a list that would grow past its cap 422 `list_members_limit`. An
    account already in the list stays, once."""
    user = _writer(request)
    list_services.follow_list_members_add(owner=user, list_id=list_id, account_ids=_account_ids(request))
    return {}


@router.delete(
    "/lists/{id:list_id}/accounts",
    auth=WRITE_LISTS,
    openapi_extra=ACCOUNTS_PARAMETERS,
    summary="Take accounts out of a list",
)
def list_accounts_remove(request: HttpRequest, list_id: int) -> dict[str, Any]:
    """An account that is not in the list is no error; the accounts stay followed."""
    user = _writer(request)
    list_services.follow_list_members_remove(owner=user, list_id=list_id, account_ids=_account_ids(request))
    return {}


@router.get(
    "/accounts/{id:account_id}/lists", auth=READ_LISTS, summary="The caller's lists that hold an account"
)
def account_lists(request: HttpRequest, account_id: int) -> list[dict[str, Any]]:
    user_get(account_id)
    found = follow_lists_with_account(request_user(request).pk, account_id)
    return [list_json(follow_list) for follow_list in found]


@router.get(
    "/timelines/list/{id:list_id}",
    auth=READ_LISTS,
    openapi_extra=PAGE_QUERY,
    summary="A list's timeline: its accounts' posts and reposts",
)
def list_timeline(request: HttpRequest, response: HttpResponse, list_id: int) -> list[dict[str, Any]]:
    """As the home timeline shows the list's accounts: their posts and reposts (plain reposts only of
    accounts whose reposts the caller's follow shows), nothing by or forwarded from an account the
    caller blocks, is blocked by or mutes. Each status shown is an impression (timeline `list`)."""
    viewer = request_user(request)
    follow_list = follow_list_for_owner(viewer.pk, list_id)
    page = page_params_from_request(request)
    hidden = frozenset(hidden_author_ids(viewer.pk))
    ids = list_timeline_ids(viewer.pk, follow_list.pk, hidden=hidden, **page.bounds())
    set_link_header(response, request, ids)
    # A list is part of home, as in Mastodon: the caller's home filters apply to it.
    statuses = statuses_filtered_for(
        viewer, FilterContext.HOME, timeline_statuses_json(ids, viewer.pk, request, hidden)
    )
    tracking.impressions_record(
        post_ids=[int(status["id"]) for status in statuses],
        user_id=viewer.pk,
        visitor_id=tracking.visitor_id_of(request),
        timeline="list",
    )
    return statuses
