"""Issuing and resolving API bearer tokens (only hashes are stored)."""

import hashlib
import secrets
from collections.abc import Collection

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from weituan.accounts.models import AccessToken, AuthorizationCode, OAuthApplication, User
from weituan.accounts.scopes import scopes_allow
from weituan.core.rows import RowReader, fetch_rows

# Mastodon's home timeline takes a token with `read` or `read:statuses`.
HOME_TIMELINE_SCOPES = ("read", "read:statuses")


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def access_token_issue(
    *, user: User | None, application: OAuthApplication | None = None, scopes: str = "read write follow push"
) -> tuple[str, AccessToken]:
    """Create a token and return (raw token, row). The raw token is never stored."""
    raw = secrets.token_urlsafe(32)
    row = AccessToken.objects.create(
        token_hash=token_hash(raw), user=user, application=application, scopes=scopes
    )
    return raw, row


def access_token_resolve(raw: str) -> AccessToken | None:
    """The live token row for `raw`, with its user and application loaded, or None.

    One indexed query reads the token, its user and its application together and makes the instances
    without compiling a queryset (which cost ten times the query on every authenticated request).
    Nothing is cached: a revoked token, a deactivated user or changed scopes take effect on the very
    next request, whichever process serves it.
    """
    if not raw or len(raw) > 200:
        return None
    rows = fetch_rows(_resolve_sql(), [token_hash(raw)])  # prepared once per PostgreSQL connection
    if not rows:
        return None
    found = rows[0]
    token = _TOKEN_ROWS.instance(found[: len(_TOKEN_ROWS)])
    cut = len(_TOKEN_ROWS) + len(_USER_ROWS)
    user = _USER_ROWS.instance(found[len(_TOKEN_ROWS) : cut])
    application = _APPLICATION_ROWS.instance(found[cut:])
    assert token is not None
    if token.user_id is not None and (user is None or not user.is_active):
        return None
    # What select_related sets: the related objects come loaded.
    AccessToken.user.field.set_cached_value(token, user)
    AccessToken.application.field.set_cached_value(token, application)
    return token


_TOKEN_ROWS = RowReader(AccessToken)
_USER_ROWS = RowReader(User)
_APPLICATION_ROWS = RowReader(OAuthApplication)
_resolve_statements: dict[str, str] = {}


def _resolve_sql() -> str:
    sql = _resolve_statements.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        sql = _resolve_statements[connection.vendor] = (
            f"SELECT {_TOKEN_ROWS.columns('t')}, {_USER_ROWS.columns('u')}, {_APPLICATION_ROWS.columns('a')}"  # noqa: S608
            f" FROM {quote(AccessToken._meta.db_table)} t"
            f" LEFT JOIN {quote(User._meta.db_table)} u ON u.id = t.user_id"
            f" LEFT JOIN {quote(OAuthApplication._meta.db_table)} a ON a.id = t.application_id"
            " WHERE t.token_hash = %s AND t.revoked_at IS NULL"
        )
    return sql


def access_tokens_ended(token_ids: Collection[int]) -> set[int]:
    """Those of `token_ids` no longer live: revoked, deleted, or whose user is deactivated or gone (what
    `access_token_resolve` refuses); one query."""
    wanted = set(token_ids)
    if not wanted:
        return set()
    live = AccessToken.objects.filter(id__in=wanted, revoked_at__isnull=True).filter(
        Q(user__isnull=True) | Q(user__is_active=True)
    )
    return wanted - set(live.values_list("id", flat=True))


def access_token_viewer(raw: str) -> tuple[int, str] | None:
    """(user id, granted scopes) of the active user a live `raw` token belongs to, or None; one
    indexed lookup.

    Written as SQL because reads that need only the caller's id (the home timeline) make it on every
    request; revocation and deactivation take effect at once, as nothing is cached.
    """
    params = access_token_viewer_params(raw)
    if params is None:
        return None
    rows = fetch_rows(access_token_viewer_sql(), params)
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def access_token_viewer_sql(token_hash: str = "%s") -> str:
    """The statement of `access_token_viewer`, selecting `user_id` and `scopes` (at most one row), for
    a caller that reads its own rows with the token's in one statement (the checkout). `token_hash`
    is the SQL of the token's hash: by default the first of the statement's two values, else an
    expression of the caller's (the second value, whether the user must be active, stays)."""
    quote = connection.ops.quote_name
    tokens, users = quote(AccessToken._meta.db_table), quote(User._meta.db_table)
    return (
        f"SELECT t.user_id, t.scopes FROM {tokens} t JOIN {users} u ON u.id = t.user_id"  # noqa: S608
        f" WHERE t.token_hash = {token_hash} AND t.revoked_at IS NULL AND u.is_active = %s"
    )


def access_token_viewer_params(raw: str) -> list[object] | None:
    """The values of `access_token_viewer_sql` for `raw`; None for a token that cannot be one."""
    if not raw or len(raw) > 200:
        return None
    return [token_hash(raw), True]


def access_token_user_id(raw: str, *, needs: tuple[str, ...] = HOME_TIMELINE_SCOPES) -> int | None:
    """The id of the active user a live `raw` token belongs to, if the token grants one of `needs`;
    else None. The default is what reading the home timeline, this lookup's main caller, needs."""
    found = access_token_viewer(raw)
    if found is None or not scopes_allow(found[1], needs):
        return None
    return found[0]


def access_token_revoke(*, raw: str) -> bool:
    return bool(
        AccessToken.objects.filter(token_hash=token_hash(raw), revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )


def access_tokens_revoke_of_user(*, user_id: int) -> int:
    """Revoke every live token of the account, and spend its authorization codes not exchanged yet (a
    password reset: whoever had the old password may have made some, or be about to); returns how many
    tokens were revoked."""
    now = timezone.now()
    AuthorizationCode.objects.filter(user_id=user_id, used_at__isnull=True).update(used_at=now)
    return AccessToken.objects.filter(user_id=user_id, revoked_at__isnull=True).update(revoked_at=now)
