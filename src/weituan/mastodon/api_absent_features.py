"""Mastodon API: the reads of Mastodon features Weituan does not have, answered truthfully as empty.

Clients read these as they start or open their main screens: Tusky, Elk, Ivory and Phanpy ask for custom
emoji, announcements and followed hashtags on login, a profile's featured hashtags and featured
accounts as they open it, and Tusky opens on a direct messages tab (lists and keyword filters are real,
see `api_lists` and `api_filters`). Weituan has no custom emoji, announcements, followed or featured
hashtags, featured accounts, direct conversations, scheduled statuses or blocked domains (it does not
federate), so each list is empty (an unknown account's is still a 404), and a client that gets an empty list carries on
where a 404 shows the user an error. There is nothing to write to: a request to create such a thing is
refused in the API's error shape (405 here, 404 on the paths below).
"""

from typing import Any

from django.http import HttpRequest
from ninja import Router

from weituan.accounts.auth import scoped_auth
from weituan.accounts.queries import user_get
from weituan.mastodon.endpoint_auth import READ_ACCOUNTS, READ_ACCOUNTS_USER

router = Router(tags=["mastodon:absent"])

READ_FOLLOWED_TAGS = scoped_auth("read", "read:follows", "follow")

READ = scoped_auth("read")
READ_STATUSES = scoped_auth("read", "read:statuses")


@router.get("/custom_emojis", auth=None, summary="Custom emoji (Weituan has none)")
def custom_emojis(request: HttpRequest) -> list[dict[str, Any]]:
    return []


@router.get("/announcements", auth=READ, summary="Server announcements (Weituan makes none)")
def announcements(request: HttpRequest) -> list[dict[str, Any]]:
    return []


@router.get("/followed_tags", auth=READ_FOLLOWED_TAGS, summary="Followed hashtags (Weituan has none)")
def followed_tags(request: HttpRequest) -> list[dict[str, Any]]:
    return []


@router.get("/featured_tags", auth=READ_ACCOUNTS_USER, summary="The caller's featured hashtags (none)")
def featured_tags_own(request: HttpRequest) -> list[dict[str, Any]]:
    return []


@router.get("/accounts/{id:account_id}/featured_tags", auth=READ_ACCOUNTS, summary="Featured hashtags (none)")
def featured_tags(request: HttpRequest, account_id: int) -> list[dict[str, Any]]:
    user_get(account_id)
    return []


@router.get("/endorsements", auth=READ_ACCOUNTS_USER, summary="Accounts the caller features (none)")
def endorsements_own(request: HttpRequest) -> list[dict[str, Any]]:
    return []


@router.get("/accounts/{id:account_id}/endorsements", auth=READ_ACCOUNTS, summary="Featured accounts (none)")
def endorsements(request: HttpRequest, account_id: int) -> list[dict[str, Any]]:
    user_get(account_id)
    return []


# Mastodon.py asks for "/api/v1/conversations/" with the slash; Mastodon answers both spellings.
@router.get("/conversations/", auth=READ_STATUSES, include_in_schema=False)
@router.get("/conversations", auth=READ_STATUSES, summary="Direct conversations (none)")
def conversations(request: HttpRequest) -> list[dict[str, Any]]:
    return []  # Weituan has no direct messages: a status with visibility "direct" is refused


@router.get("/scheduled_statuses", auth=READ_STATUSES, summary="Scheduled statuses (none)")
def scheduled_statuses(request: HttpRequest) -> list[dict[str, Any]]:
    return []  # a status with scheduled_at is refused, so none ever waits


@router.get(
    "/domain_blocks", auth=scoped_auth("read", "follow", "read:blocks"), summary="Blocked domains (none)"
)
def domain_blocks(request: HttpRequest) -> list[str]:
    return []  # Weituan does not federate: there is no other domain to block
