"""Mastodon API: registering an account, the caller's own account, lookup, search and fetch by id.

The relation endpoints under /accounts/{id}/... (follow, statuses, followers...) live in api_relations.
Ids are matched with the `id` converter (digits, no larger than any id) so literal paths such as
/accounts/relationships are never taken for an id.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from weituan.accounts import invites, oauth, queries, services
from weituan.accounts.auth import request_user
from weituan.accounts.models import AccessToken, QuotePolicy
from weituan.accounts.profile_fields import FIELDS_PARAMETER
from weituan.core.errors import PermissionDenied, ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.core.ratelimit import rate_limit_hit
from weituan.mastodon.api_apps import app_token_write_accounts_auth
from weituan.mastodon.endpoint_auth import (
    READ_ACCOUNTS,
    READ_ACCOUNTS_USER,
    READ_OWN_ACCOUNT,
    READ_SEARCH,
    WRITE_ACCOUNTS,
)
from weituan.mastodon.request_params import BOOLEAN, TEXT, mastodon_params, params_documented
from weituan.mastodon.serializers_accounts import account_json, accounts_json, credential_account_json
from weituan.microblog.models import Visibility
from weituan.microblog.queries.relations import follow_requests_count
from weituan.microblog.search.queries import Page, accounts_search
from weituan.microblog.services import relations as relation_services
from weituan.microblog.stats import account_counts

router = Router(tags=["mastodon:accounts"])

# Mastodon allows 5 sign-ups per address per 30 minutes; Weituan is a little more forgiving for shared
# networks (campus, office) where many people register at once.
REGISTRATIONS_PER_ADDRESS = 20
REGISTRATION_WINDOW_SECONDS = 1800
# Mastodon's bound on /accounts/search: 40 accounts unless asked, up to 80.
ACCOUNT_SEARCH_MAX_LIMIT = 80


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def _own_account(request: HttpRequest, user: Any) -> dict[str, Any]:
    counts = account_counts([user.pk])[user.pk]
    return credential_account_json(
        user, counts, request=request, follow_requests=follow_requests_count(user.pk)
    )


@router.post(
    "/accounts", auth=app_token_write_accounts_auth, summary="Register an account (needs an app token)"
)
def register(request: HttpRequest) -> dict[str, Any]:
    row: AccessToken = request.auth  # type: ignore[attr-defined]
    if row.user is not None:
        raise PermissionDenied(
            "Registering needs an application token, not a user's", code="app_token_required"
        )
    rate_limit_hit(
        f"register:{_client_address(request)}",
        limit=REGISTRATIONS_PER_ADDRESS,
        window_seconds=REGISTRATION_WINDOW_SECONDS,
    )
    params = mastodon_params(request)
    assert row.application is not None  # guaranteed by the app token auth
    missing = [name for name in ("username", "email", "password") if not params.text(name)]
    if missing:
        raise ValidationFailed(
            f"Missing: {', '.join(missing)}",
            code="invalid",
            details={name: [{"error": "ERR_BLANK", "description": "can't be blank"}] for name in missing},
        )
    # As in Mastodon, signing up means agreeing to the server's rules; a client must ask the person
    # (Mastodon.py sends `agreement=1` only when told agreement=True).
    if not params.flag("agreement"):
        raise ValidationFailed(
            "You must agree to the server's rules to sign up",
            code="agreement_required",
            details={"agreement": [{"error": "ERR_ACCEPTED", "description": "must be accepted"}]},
        )
    user = services.user_register(
        username=params.text("username") or "",
        email=params.text("email") or "",
        password=params.text("password") or "",
        display_name=params.text("display_name") or "",
        locale=params.text("locale") or "",
    )
    # Mastodon's `invite_code` is the last part of an invite link; Weituan's links are
    # /invite/<username>. Sign-ups are open, so an unknown code is no reason to refuse one.
    inviter = invites.inviter_by_code(params.text("invite_code"))
    if inviter is not None:
        invites.invitation_accept(inviter_id=inviter.pk, invitee=user, new_account=True)
    issued = oauth.user_token_issue(user=user, application=row.application, scopes=row.scopes)
    return issued.as_json()


@router.get("/accounts/verify_credentials", auth=READ_OWN_ACCOUNT, summary="The caller's own account")
def verify_credentials(request: HttpRequest) -> dict[str, Any]:
    return _own_account(request, request_user(request))


@router.patch(
    "/accounts/update_credentials",
    auth=WRITE_ACCOUNTS,
    openapi_extra=params_documented(
        {
            "display_name": {**TEXT, "description": "at most 50 characters"},
            "note": {**TEXT, "description": "at most 500 characters"},
            "locked": BOOLEAN,
            "bot": BOOLEAN,
            "discoverable": BOOLEAN,
            "source": {
                "type": "object",
                "properties": {
                    "privacy": {"type": "string", "enum": [choice.value for choice in Visibility]},
                    "language": TEXT,
                    "quote_policy": {"type": "string", "enum": [choice.value for choice in QuotePolicy]},
                },
            },
        }
    ),
    summary="Change the caller's profile",
)
def update_credentials(request: HttpRequest) -> dict[str, Any]:
    user = request_user(request)
    rate_limit_hit(f"profile:{user.pk}", limit=settings.RATE_LIMIT_WRITES_PER_MINUTE)
    params = mastodon_params(request)
    params.group("source")
    was_locked = user.locked
    services.user_profile_update(
        user=user,
        display_name=params.text("display_name"),
        bio=params.text("note"),
        avatar=params.file("avatar"),
        header=params.file("header"),
        locked=params.flag("locked"),
        bot=params.flag("bot"),
        discoverable=params.flag("discoverable"),
        quote_policy=params.text("source[quote_policy]") or None,
        profile_fields=params.pairs(FIELDS_PARAMETER, "name", "value"),
        default_privacy=params.text("source[privacy]") or None,
        default_language=params.text("source[language]"),
    )
    relation_services.account_lock_change(owner=user, was_locked=was_locked)
    return _own_account(request, user)


@router.get("/accounts/lookup", auth=READ_ACCOUNTS, summary="Find an account by its @name")
def lookup(request: HttpRequest, acct: str) -> dict[str, Any]:
    user = queries.user_by_username(acct)
    return account_json(user, account_counts([user.pk])[user.pk], request=request)


class AccountSearchQuery(Schema):
    q: str
    limit: int = Field(40, ge=1)
    offset: int = Field(0, ge=0, le=MAX_ID)
    resolve: bool = False  # nothing to fetch from other servers: Weituan does not federate
    following: bool = False


@router.get("/accounts/search", auth=READ_SEARCH, summary="Accounts whose name starts with the query")
def account_search(request: HttpRequest, params: Query[AccountSearchQuery]) -> list[dict[str, Any]]:
    """What compose boxes ask as one types an @mention, and what Mastodon.py's `account_search` calls:
    the accounts part of /api/v2/search, paged by `offset`."""
    viewer = request_user(request)
    if params.following and viewer is None:
        raise ValidationFailed("following=true needs a logged-in account", code="login_required")
    users = accounts_search(
        query=params.q,
        viewer=viewer,
        page=Page(limit=params.limit, offset=params.offset, largest=ACCOUNT_SEARCH_MAX_LIMIT),
        following_only=params.following,
    )
    return accounts_json(users, request)


@router.get("/accounts/{id:account_id}", auth=READ_ACCOUNTS, summary="An account by id")
def account_get(request: HttpRequest, account_id: int) -> dict[str, Any]:
    user = queries.user_get(account_id)
    return account_json(user, account_counts([user.pk])[user.pk], request=request)


@router.get("/preferences", auth=READ_ACCOUNTS_USER, summary="The caller's posting and reading preferences")
def preferences(request: HttpRequest) -> dict[str, Any]:
    user = request_user(request)
    return {
        "posting:default:visibility": user.default_privacy,
        "posting:default:sensitive": False,
        "posting:default:language": user.posting_language or None,
        "posting:default:quote_policy": user.quote_policy,
        "reading:expand:media": "default",
        "reading:expand:spoilers": False,
    }
