"""Mastodon's Account entity for Weituan users, plus the Weituan extras (the merchant "V" badge).

The shape follows https://docs.joinmastodon.org/entities/Account/ field for field, so Mastodon clients
parse it unchanged; the extras are additional keys that clients ignore.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.encoding import iri_to_uri

from weituan.accounts.profile_fields import profile_fields_of
from weituan.microblog.queries.bios import bio_html_of, bio_mentions_preload
from weituan.microblog.stats import AccountCounts, account_counts
from weituan.microblog.text import render_inline_html

DEFAULT_AVATAR = "accounts/default-avatar.png"
DEFAULT_HEADER = "accounts/default-header.png"


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """`path` as an absolute URL: from the request's host when there is one, else from SITE_URL."""
    if path.startswith(("http://", "https://")):
        return path
    if request is not None:
        if path.startswith("/") and not path.startswith("//") and "/./" not in path and "/../" not in path:
            # What build_absolute_uri does for a plain absolute path, without its URL parsing: a page
            # of statuses builds a few hundred of these.
            scheme_host: str = request._current_scheme_host  # type: ignore[attr-defined]
            return _uri_of(scheme_host + path)
        return request.build_absolute_uri(path)
    return settings.SITE_URL + path


@lru_cache(maxsize=4096)
def _uri_of(iri: str) -> str:
    """`iri_to_uri` of an absolute URL, kept: a request's few hosts and its accounts' few paths (their
    profile, avatar and header) make the same URLs over and over, and quoting one costs more than
    looking it up."""
    return str(iri_to_uri(iri))


def mastodon_datetime(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as Mastodon writes it."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@lru_cache(maxsize=8)
def _static_url(path: str) -> str:
    # The static files' URLs are fixed for the life of the process (hashed names in production).
    return static(path)


def fields_json(user: Any, request: HttpRequest | None = None) -> list[dict[str, Any]]:
    """The profile's name/value pairs as Mastodon's Account `fields`: the name plain text, the value
    HTML linkified as post text is (escaped, only links we build). Nothing is verified (`rel="me"`
    checks are for federated servers), so `verified_at` is always null."""
    pairs = profile_fields_of(user)
    if not pairs:
        return []
    base = absolute_url("/", request).rstrip("/")
    return [
        {"name": pair.name, "value": render_inline_html(pair.value, base_url=base), "verified_at": None}
        for pair in pairs
    ]


def avatar_url(user: Any, request: HttpRequest | None = None) -> str:
    path = user.avatar.url if user.avatar else _static_url(DEFAULT_AVATAR)
    return absolute_url(path, request)


def header_url(user: Any, request: HttpRequest | None = None) -> str:
    header = getattr(user, "header", None)
    path = header.url if header else _static_url(DEFAULT_HEADER)
    return absolute_url(path, request)


def profile_url(user: Any, request: HttpRequest | None = None) -> str:
    return absolute_url(f"/@{user.username}", request)


def account_json(user: Any, counts: AccountCounts, *, request: HttpRequest | None = None) -> dict[str, Any]:
    """One Account entity. `counts` comes from `weituan.microblog.stats.account_counts`."""
    avatar = avatar_url(user, request)
    header = header_url(user, request)
    url = profile_url(user, request)
    last_post_at = counts.last_post_at
    return {
        "id": str(user.pk),
        "username": user.username,
        # Every account is local, so acct is the bare username, as Mastodon writes local accounts.
        "acct": user.username,
        "display_name": user.display_name,
        "locked": bool(getattr(user, "locked", False)),
        "bot": bool(getattr(user, "bot", False)),
        "discoverable": bool(getattr(user, "discoverable", True)),
        "indexable": bool(getattr(user, "discoverable", True)),
        "group": False,
        "noindex": not bool(getattr(user, "discoverable", True)),
        "hide_collections": False,
        "created_at": mastodon_datetime(user.date_joined),
        # Linkified as a status's content is; `source.note` keeps the text as written.
        "note": bio_html_of(user, base_url=absolute_url("/", request).rstrip("/")),
        "url": url,
        "uri": url,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": counts.followers,
        "following_count": counts.following,
        "statuses_count": counts.posts,
        # Mastodon gives only the day of the last post.
        "last_status_at": last_post_at.date().isoformat() if last_post_at else None,
        "emojis": [],
        "fields": fields_json(user, request),
        "roles": [],
        # Weituan extras.
        "is_merchant": bool(user.is_merchant),
        "verified_merchant": bool(user.is_verified_merchant),
        "verified_at": mastodon_datetime(user.verified_at) if user.is_verified_merchant else None,
    }


def accounts_json(users: Iterable[Any], request: HttpRequest | None = None) -> list[dict[str, Any]]:
    """Account entities for `users`, in order, with every counter read in one query (and the accounts
    their bios name in one more, when a bio names any)."""
    people: Sequence[Any] = list(users)
    counts = account_counts(sorted({user.pk for user in people}))
    bio_mentions_preload(people)
    return [account_json(user, counts[user.pk], request=request) for user in people]


def credential_account_json(
    user: Any, counts: AccountCounts, *, request: HttpRequest | None = None, follow_requests: int = 0
) -> dict[str, Any]:
    """The CredentialAccount entity (the caller's own account, with `source` and `role`)."""
    data = account_json(user, counts, request=request)
    data["source"] = {
        "privacy": user.default_privacy,
        "sensitive": False,
        "language": user.posting_language,
        "note": user.bio,
        "fields": [
            {"name": pair.name, "value": pair.value, "verified_at": None} for pair in profile_fields_of(user)
        ],
        "follow_requests_count": follow_requests,
        "hide_collections": False,
        "discoverable": data["discoverable"],
        "indexable": data["indexable"],
        "quote_policy": user.quote_policy,
    }
    data["role"] = {
        "id": "-99" if not user.is_operator else "3",
        "name": "Operator" if user.is_operator else "",
        "color": "",
        "permissions": "0",
        "highlighted": bool(user.is_operator),
    }
    return data
