"""Mastodon API: accounts to find — follow suggestions, the accounts a client offers to follow (Elk's and
the official apps' "who to follow": v2 says why each is suggested, v1 gives the accounts alone), and the
profile directory."""

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from weituan.accounts.auth import request_user
from weituan.accounts.queries import users_by_ids
from weituan.core.ids import MAX_ID
from weituan.mastodon.endpoint_auth import READ_ACCOUNTS, READ_ACCOUNTS_USER
from weituan.mastodon.serializers_accounts import accounts_json
from weituan.microblog.queries.suggestions import Suggestion, directory_ids, follow_suggestions

router = Router(tags=["mastodon:accounts"])
router_v2 = Router(tags=["mastodon:v2"])

MAX_SUGGESTIONS = 80


class SuggestionsQuery(Schema):
    limit: int = Field(40, ge=1)


def _suggested(
    request: HttpRequest, params: SuggestionsQuery
) -> tuple[list[Suggestion], list[dict[str, Any]]]:
    suggestions = follow_suggestions(request_user(request), limit=min(params.limit, MAX_SUGGESTIONS))
    users = users_by_ids(suggestion.user_id for suggestion in suggestions)
    kept = [suggestion for suggestion in suggestions if suggestion.user_id in users]
    return kept, accounts_json([users[suggestion.user_id] for suggestion in kept], request)


@router_v2.get("/suggestions", auth=READ_ACCOUNTS_USER, summary="Accounts to follow, with why")
def suggestions_v2(request: HttpRequest, params: Query[SuggestionsQuery]) -> list[dict[str, Any]]:
    kept, accounts = _suggested(request, params)
    return [
        {
            "source": "global" if suggestion.source == "most_followed" else "past_interactions",
            "sources": [suggestion.source],
            "account": account,
        }
        for suggestion, account in zip(kept, accounts, strict=True)
    ]


@router.get("/suggestions", auth=READ_ACCOUNTS_USER, summary="Accounts to follow")
def suggestions_v1(request: HttpRequest, params: Query[SuggestionsQuery]) -> list[dict[str, Any]]:
    return _suggested(request, params)[1]


class DirectoryQuery(Schema):
    offset: int = Field(0, ge=0, le=MAX_ID - MAX_SUGGESTIONS)
    limit: int = Field(40, ge=1)
    order: Literal["active", "new"] = "active"
    local: bool = False  # every account is local: Weituan does not federate


@router.get("/directory", auth=READ_ACCOUNTS, summary="Accounts that chose to be found")
def directory(request: HttpRequest, params: Query[DirectoryQuery]) -> list[dict[str, Any]]:
    ids = directory_ids(
        request_user(request),
        order=params.order,
        offset=params.offset,
        limit=min(params.limit, MAX_SUGGESTIONS),
    )
    users = users_by_ids(ids)
    return accounts_json([users[user_id] for user_id in ids if user_id in users], request)
