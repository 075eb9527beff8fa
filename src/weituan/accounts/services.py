"""Account writes: registration, profile changes, merchant applications and their verification."""

import logging
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from weituan.accounts.models import MerchantApplication, QuotePolicy, User, username_validator
from weituan.accounts.profile_fields import (
    default_language_clean,
    default_privacy_clean,
    profile_fields_clean,
)
from weituan.core.errors import DATABASE_OUTAGES, Conflict, NotFound, PermissionDenied, ValidationFailed
from weituan.core.images import ProcessedImage, image_process
from weituan.core.states import StateGraph, advance

logger = logging.getLogger(__name__)

AVATAR_MAX_SIDE = 400
HEADER_MAX_SIDE = 1500
# Names that would shadow pages or mislead people about who is speaking.
RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "api",
        "oauth",
        "settings",
        "accounts",
        "operator",
        "merchant",
        "static",
        "media",
        "weituan",
        "support",
        "root",
        "system",
        "help",
        "about",
        "search",
        "tags",
        "explore",
    }
)
LAST_SEEN_RESOLUTION = timedelta(minutes=5)

MERCHANT_APPLICATION = StateGraph.declare(
    "merchant application",
    MerchantApplication.State.PENDING,
    {
        MerchantApplication.State.PENDING: [
            MerchantApplication.State.APPROVED,
            MerchantApplication.State.REJECTED,
        ],
        MerchantApplication.State.APPROVED: [MerchantApplication.State.REVOKED],
    },
)


def _field_error(field: str, error: str, description: str) -> dict[str, list[dict[str, str]]]:
    """Mastodon's registration error details: {"username": [{"error": "ERR_TAKEN", ...}]}."""
    return {field: [{"error": error, "description": description}]}


def _clean_username(username: str) -> str:
    username = (username or "").strip().lstrip("@")
    try:
        username_validator(username)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "Username must be 2–30 letters, digits, underscores or Chinese characters",
            code="invalid",
            field="username",
            details=_field_error("username", "ERR_INVALID", "is invalid"),
        ) from exc
    if username.lower() in RESERVED_USERNAMES:
        raise ValidationFailed(
            "This username is reserved",
            code="username_reserved",
            field="username",
            details=_field_error("username", "ERR_RESERVED", "is reserved"),
        )
    return username


def _clean_email(email: str) -> str:
    email = (email or "").strip()
    try:
        EmailValidator()(email)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "Enter a valid e-mail address",
            code="invalid",
            field="email",
            details=_field_error("email", "ERR_INVALID", "is invalid"),
        ) from exc
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def _check_password(password: str, user: User | None = None) -> None:
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        message = " ".join(exc.messages)
        raise ValidationFailed(
            message,
            code="invalid",
            field="password",
            details=_field_error("password", "ERR_INVALID", message),
        ) from exc


def _username_taken() -> ValidationFailed:
    return ValidationFailed(
        "This username is already taken",
        code="username_taken",
        field="username",
        details=_field_error("username", "ERR_TAKEN", "is already taken"),
    )


def _email_taken() -> ValidationFailed:
    return ValidationFailed(
        "An account with this e-mail address already exists",
        code="email_taken",
        field="email",
        details=_field_error("email", "ERR_TAKEN", "is already taken"),
    )


def user_register_problems(
    *, username: str, email: str, password: str, display_name: str = ""
) -> list[ValidationFailed]:
    """Every reason `user_register` would refuse these, at once (it stops at the first), so a sign-up
    form shows them all together instead of one a try. An empty password is left to the form."""
    problems: list[ValidationFailed] = []
    try:
        username = _clean_username(username)
    except ValidationFailed as exc:
        problems.append(exc)
    else:
        if User.objects.filter(username__iexact=username).exists():
            problems.append(_username_taken())
    try:
        email = _clean_email(email)
    except ValidationFailed as exc:
        problems.append(exc)
    else:
        if User.objects.filter(email__iexact=email).exists():
            problems.append(_email_taken())
    if password:
        try:
            _check_password(password, User(username=username, email=email, display_name=display_name))
        except ValidationFailed as exc:
            problems.append(exc)
    return problems


def user_register(
    *, username: str, email: str, password: str, display_name: str = "", locale: str = ""
) -> User:
    """Create an active account. Usernames and e-mail addresses are unique without regard to case."""
    username = _clean_username(username)
    email = _clean_email(email)
    display_name = (display_name or "").strip()[:50]
    candidate = User(username=username, email=email, display_name=display_name)
    _check_password(password, candidate)
    if User.objects.filter(username__iexact=username).exists():
        raise _username_taken()
    if User.objects.filter(email__iexact=email).exists():
        raise _email_taken()
    try:
        with transaction.atomic():
            return User.objects.create_user(
                username=username,
                email=email,
                password=password,
                display_name=display_name,
                locale=_clean_locale(locale),
            )
    except IntegrityError as exc:
        # Two sign-ups raced for the same name; the unique index decided.
        raise _username_taken() from exc


def _clean_locale(locale: str | None) -> str:
    if not locale:
        return ""
    known = {code.lower() for code, _ in settings.LANGUAGES}
    wanted = locale.strip().lower().replace("_", "-")
    if wanted in known:
        return wanted
    if wanted.startswith("zh"):
        return "zh-hans"
    if wanted.split("-")[0] == "en":
        return "en"
    raise ValidationFailed(f"Unsupported language: {locale}", code="invalid", field="locale")


def _process_profile_image(upload: Any, max_side: int, field: str) -> ProcessedImage:
    """The picture checked and re-encoded; a refusal names the field (`avatar` or `header`) it is about,
    so a client that sent both knows which to replace."""
    try:
        return image_process(upload=upload, max_bytes=settings.MEDIA_MAX_BYTES, max_side=max_side)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, code=exc.code, status=exc.status, field=field) from exc


def user_profile_update(
    *,
    user: User,
    display_name: str | None = None,
    bio: str | None = None,
    avatar: Any = None,
    header: Any = None,
    locale: str | None = None,
    locked: bool | None = None,
    bot: bool | None = None,
    discoverable: bool | None = None,
    quote_policy: str | None = None,
    profile_fields: Sequence[tuple[str, str]] | None = None,
    default_privacy: str | None = None,
    default_language: str | None = None,
) -> User:
    """Change the given profile fields; `None` leaves a field as it is. `quote_policy`,
    `default_privacy` and `default_language` are the defaults new posts get (see QuotePolicy,
    PostPrivacy); `profile_fields` replaces the profile's name/value pairs (see
    accounts.profile_fields: empty pairs are dropped, at most four kept).

    Everything is checked, and images re-encoded, before anything is written, so a refusal (a bad
    upload, a field too long) changes nothing.
    """
    changes: dict[str, Any] = {}
    if display_name is not None:
        display_name = display_name.strip()
        if len(display_name) > 50:
            raise ValidationFailed("Display name is limited to 50 characters", field="display_name")
        changes["display_name"] = display_name
    if bio is not None:
        bio = bio.strip()
        if len(bio) > 500:
            raise ValidationFailed("Bio is limited to 500 characters", field="note")
        changes["bio"] = bio
    if locale is not None:
        changes["locale"] = _clean_locale(locale)
    if quote_policy is not None:
        if quote_policy not in QuotePolicy.values:
            raise ValidationFailed(
                "source[quote_policy] must be one of public, followers, nobody",
                code="invalid_quote_policy",
                field="source[quote_policy]",
            )
        changes["quote_policy"] = quote_policy
    if profile_fields is not None:
        changes["profile_fields"] = profile_fields_clean(profile_fields)
    if default_privacy is not None:
        changes["default_privacy"] = default_privacy_clean(default_privacy)
    if default_language is not None:
        changes["default_language"] = default_language_clean(default_language)
    for name, flag in (("locked", locked), ("bot", bot), ("discoverable", discoverable)):
        if flag is not None:
            changes[name] = bool(flag)
    avatar_image = _process_profile_image(avatar, AVATAR_MAX_SIDE, "avatar") if avatar is not None else None
    header_image = _process_profile_image(header, HEADER_MAX_SIDE, "header") if header is not None else None

    old_files: list[str] = []
    for name, value in changes.items():
        setattr(user, name, value)
    fields = list(changes)
    if avatar_image is not None:
        if user.avatar.name:
            old_files.append(user.avatar.name)
        user.avatar.save(f"{user.pk}.{avatar_image.extension}", avatar_image.content, save=False)
        fields.append("avatar")
    if header_image is not None:
        if user.header.name:
            old_files.append(user.header.name)
        user.header.save(f"{user.pk}.{header_image.extension}", header_image.content, save=False)
        fields.append("header")
    if fields:
        user.save(update_fields=fields)
    for name in old_files:
        # Replaced pictures are removed only after the new ones are saved and recorded.
        transaction.on_commit(partial(user.avatar.storage.delete, name))
    return user


def user_password_change(*, user: User, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise ValidationFailed("The current password is wrong", code="wrong_password", field="old_password")
    _check_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])


def last_seen_gate_key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}seen:{user_id}"


def user_touch_last_seen(*, user_id: int) -> bool:
    """Record activity at most once per few minutes per user; returns whether a write happened.

    A cache entry gates the write, so a busy client costs one cache round trip per request and one
    conditional UPDATE per LAST_SEEN_RESOLUTION, not a database write per request.
    """
    window = int(LAST_SEEN_RESOLUTION.total_seconds())
    if not cache.add(last_seen_gate_key(user_id), 1, timeout=window):
        return False
    now = timezone.now()
    try:
        return bool(
            User.objects.filter(pk=user_id)
            .filter(Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=now - LAST_SEEN_RESOLUTION))
            .update(last_seen_at=now)
        )
    except DATABASE_OUTAGES as exc:
        # Made once the request is answered: a connection the database ended meanwhile (its request may
        # have met it too, and been answered 503) costs the stamp, not the answer.
        logger.warning("last seen of user %s not recorded: %s", user_id, exc)
        return False


def merchant_apply(*, user: User, shop_name: str, description: str = "") -> MerchantApplication:
    """A user asks to become a verified merchant. One open application at a time."""
    shop_name = (shop_name or "").strip()
    if not shop_name or len(shop_name) > 100:
        raise ValidationFailed("Shop name must be 1–100 characters", field="shop_name")
    if len(description) > 2000:
        raise ValidationFailed("Description is limited to 2000 characters", field="description")
    if user.is_verified_merchant:
        raise Conflict("This account is already a verified merchant", code="already_merchant")
    if MerchantApplication.objects.filter(user=user, state=MerchantApplication.State.PENDING).exists():
        raise Conflict("An application is already waiting for review", code="application_pending")
    try:
        with transaction.atomic():
            return MerchantApplication.objects.create(
                user=user, shop_name=shop_name, description=description.strip()
            )
    except IntegrityError as exc:
        raise Conflict("An application is already waiting for review", code="application_pending") from exc


def _require_operator(actor: User) -> None:
    if not (actor.is_authenticated and actor.is_active and actor.is_operator):
        raise PermissionDenied("Only operators may review merchants", code="not_operator")


def merchant_application_approve(*, operator: User, application_id: int) -> MerchantApplication:
    """Approve a pending application: the applicant becomes a verified merchant (the "V" badge)."""
    _require_operator(operator)
    with transaction.atomic():
        application = _pending_application(application_id)
        moved = advance(
            MERCHANT_APPLICATION,
            MerchantApplication.objects.filter(pk=application.pk),
            MerchantApplication.State.APPROVED,
            decided_by=operator,
        )
        if not moved:
            raise Conflict("This application was already decided", code="already_decided")
        now = timezone.now()
        User.objects.filter(pk=application.user_id).update(
            is_merchant=True, verified_at=now, verified_by=operator
        )
    application.refresh_from_db()
    return application


def merchant_application_reject(
    *, operator: User, application_id: int, note: str = ""
) -> MerchantApplication:
    _require_operator(operator)
    with transaction.atomic():
        application = _pending_application(application_id)
        moved = advance(
            MERCHANT_APPLICATION,
            MerchantApplication.objects.filter(pk=application.pk),
            MerchantApplication.State.REJECTED,
            decided_by=operator,
            decision_note=note.strip()[:500],
        )
        if not moved:
            raise Conflict("This application was already decided", code="already_decided")
    application.refresh_from_db()
    return application


def merchant_verification_revoke(*, operator: User, user_id: int, note: str = "") -> User:
    """Take the "V" badge away, recorded as the verification was: the application that gave it moves
    to revoked, naming the operator, the time and the reason (`note`). A merchant verified without an
    application (seeded) gets a revoked record of its own, dated from its verification.

    Clearing the badge updates the account's row, so every kept rendering of it (profile, post cards,
    the API's account JSON) is out of date at once. The account stays a merchant (`is_merchant`): the
    deals it has keep running and its buyers' orders and vouchers are honoured, so revoking is allowed
    whatever deals are live; only making and publishing new deals needs the badge.
    """
    _require_operator(operator)
    note = note.strip()[:500]
    with transaction.atomic():
        merchant = User.objects.select_for_update().filter(pk=user_id).first()
        if merchant is None:
            raise NotFound("No such account", code="account_not_found")
        if not merchant.is_verified_merchant:
            raise Conflict("This account is not a verified merchant", code="not_verified_merchant")
        User.objects.filter(pk=user_id).update(verified_at=None, verified_by=None)
        revoked = advance(
            MERCHANT_APPLICATION,
            MerchantApplication.objects.filter(user_id=user_id),
            MerchantApplication.State.REVOKED,
            stamp_field="revoked_at",  # `state_changed_at` stays the time of the approval
            revoked_by=operator,
            revocation_note=note,
        )
        if not revoked:
            MerchantApplication.objects.create(
                user=merchant,
                shop_name=(merchant.display_name or merchant.username)[:100],
                state=MerchantApplication.State.REVOKED,
                state_changed_at=merchant.verified_at,
                decided_by_id=merchant.verified_by_id,
                revoked_at=timezone.now(),
                revoked_by=operator,
                revocation_note=note,
            )
    merchant.refresh_from_db()
    return merchant


def _pending_application(application_id: int) -> MerchantApplication:
    application = MerchantApplication.objects.filter(pk=application_id).first()
    if application is None:
        raise NotFound("No such merchant application", code="application_not_found")
    return application
