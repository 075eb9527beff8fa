"""Account reads: users by id, name or login, and the merchant applications an operator reviews."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower

from weituan.accounts.models import MerchantApplication, User
from weituan.core.errors import NotFound, PermissionDenied
from weituan.core.ids import MAX_ID


def user_get(user_id: int) -> User:
    """An active user by id, or NotFound."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound("Record not found", code="account_not_found")
    return user


def user_by_username(username: str) -> User:
    """An active user by @name (case-insensitive, a leading @ and a local domain part allowed)."""
    name = (username or "").strip().lstrip("@").split("@")[0]
    user = User.objects.filter(username__iexact=name, is_active=True).first() if name else None
    if user is None:
        raise NotFound("Record not found", code="account_not_found")
    return user


def user_is_locked(user_id: int) -> bool:
    """Whether the account approves its followers (Mastodon's `locked`); read fresh, never cached."""
    return bool(User.objects.filter(pk=user_id, locked=True).exists())


def users_by_ids(user_ids: Iterable[int]) -> dict[int, User]:
    """Active users by id in one query; missing ids (and numbers no id can be) are simply absent."""
    ids = [user_id for user_id in set(user_ids) if 0 < user_id <= MAX_ID]
    return {user.pk: user for user in User.objects.filter(pk__in=ids, is_active=True)}


def users_by_usernames(usernames: Iterable[str]) -> dict[str, User]:
    """Active users keyed by lower-cased username, in one query (for @mentions)."""
    wanted = {name.lower() for name in usernames if name}
    if not wanted:
        return {}
    found = (
        User.objects.filter(is_active=True)
        .annotate(lower_name=Lower("username"))
        .filter(lower_name__in=sorted(wanted))
    )
    return {user.username.lower(): user for user in found}


def user_for_login(identifier: str) -> User | None:
    """The active user whose username or e-mail is `identifier`, for logging in; None when unknown."""
    identifier = (identifier or "").strip()
    if not identifier:
        return None
    if "@" in identifier.lstrip("@"):
        matches = list(User.objects.filter(email__iexact=identifier, is_active=True)[:2])
        # An e-mail address shared by two accounts (possible for accounts made before uniqueness was
        # enforced) identifies no one.
        return matches[0] if len(matches) == 1 else None
    return User.objects.filter(username__iexact=identifier.lstrip("@"), is_active=True).first()


def merchant_applications_for_operator(
    operator: User, *, state: str = MerchantApplication.State.PENDING
) -> QuerySet[MerchantApplication]:
    if not operator.is_operator:
        raise PermissionDenied("Only operators may review merchants", code="not_operator")
    return MerchantApplication.objects.filter(state=state).select_related("user").order_by("created_at", "pk")


def verified_merchant_for_operator(operator: User, user_id: int) -> User:
    """A verified merchant an operator may take the badge from; NotFound for any other account."""
    if not operator.is_operator:
        raise PermissionDenied("Only operators may review merchants", code="not_operator")
    merchant = verified_merchants().filter(pk=user_id).first()
    if merchant is None:
        raise NotFound("No such verified merchant", code="merchant_not_found")
    return merchant


def merchant_applications_of_user(user: User) -> QuerySet[MerchantApplication]:
    return MerchantApplication.objects.filter(user=user).order_by("-created_at", "-pk")


def verified_merchants() -> QuerySet[User]:
    return User.objects.filter(is_merchant=True, verified_at__isnull=False, is_active=True).order_by(
        "username"
    )


@dataclass(frozen=True, slots=True)
class UserCounts:
    total: int
    active: int


def user_counts(*, active_since: datetime | None = None) -> UserCounts:
    """How many active accounts exist, and how many were seen since `active_since` (one query)."""
    seen = Q(last_seen_at__gte=active_since) if active_since is not None else Q(pk__isnull=False)
    row = User.objects.filter(is_active=True).aggregate(total=Count("pk"), active=Count("pk", filter=seen))
    return UserCounts(total=row["total"] or 0, active=row["active"] or 0)
