"""Profile metadata (Mastodon's account `fields`) and the posting defaults: their limits and checks.

A profile carries up to four name/value pairs ("网店" → a link, "营业时间" → "10:00–22:00"), stored as
plain text on the account and turned into HTML only when shown. The limits are Mastodon's, so a client's
profile editor that Mastodon accepts is accepted here too.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from weituan.accounts.models import PostPrivacy
from weituan.core.errors import ValidationFailed

MAX_PROFILE_FIELDS = 4
MAX_FIELD_NAME_LENGTH = 255
MAX_FIELD_VALUE_LENGTH = 255
FIELDS_PARAMETER = "fields_attributes"
# An ISO 639 language code (two or three letters), with an optional region or script ("zh-TW").
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")
_LANGUAGE_MAX_LENGTH = 10  # what Post.language holds


@dataclass(frozen=True, slots=True)
class ProfileField:
    """One name/value pair of a profile, plain text."""

    name: str
    value: str


def profile_fields_of(user: Any) -> list[ProfileField]:
    """The account's pairs as stored, in order (anything malformed in the column is left out)."""
    stored = getattr(user, "profile_fields", None) or []
    return [
        ProfileField(name=str(item.get("name", "")), value=str(item.get("value", "")))
        for item in stored
        if isinstance(item, dict)
    ]


def profile_fields_clean(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The pairs as they are stored: each stripped, those with neither a name nor a value dropped (a
    profile editor sends every row, the empty ones too), at most MAX_PROFILE_FIELDS left.

    A pair with a value but no name is refused rather than dropped as Mastodon drops it: the person
    typed something and would not see it again. Every pair is checked before anything is kept, so a
    refusal leaves the profile as it was.
    """
    kept: list[dict[str, str]] = []
    for raw_name, raw_value in pairs:
        name, value = (raw_name or "").strip(), (raw_value or "").strip()
        if not name and not value:
            continue
        if not name:
            raise ValidationFailed(
                "A profile field needs a name as well as a value",
                code="profile_field_name_blank",
                field=FIELDS_PARAMETER,
            )
        if len(name) > MAX_FIELD_NAME_LENGTH or len(value) > MAX_FIELD_VALUE_LENGTH:
            raise ValidationFailed(
                f"A profile field's name and value are limited to {MAX_FIELD_NAME_LENGTH} and "
                f"{MAX_FIELD_VALUE_LENGTH} characters",
                code="profile_field_too_long",
                field=FIELDS_PARAMETER,
            )
        kept.append({"name": name, "value": value})
    if len(kept) > MAX_PROFILE_FIELDS:
        raise ValidationFailed(
            f"A profile has at most {MAX_PROFILE_FIELDS} fields",
            code="too_many_profile_fields",
            field=FIELDS_PARAMETER,
        )
    return kept


def default_privacy_clean(privacy: str) -> str:
    """`privacy` if it is a visibility new posts may default to (public, unlisted or private)."""
    if privacy not in PostPrivacy.values:
        raise ValidationFailed(
            f"source[privacy] must be one of {', '.join(PostPrivacy.values)}",
            code="invalid_privacy",
            field="source[privacy]",
        )
    return privacy


def default_language_clean(language: str) -> str:
    """`language` as stored: an ISO 639 code in lower case, a region in upper case ("zh_tw" is "zh-TW"),
    or blank for none."""
    wanted = language.strip().lower().replace("_", "-")
    if not wanted:
        return ""
    if len(wanted) > _LANGUAGE_MAX_LENGTH or not _LANGUAGE_RE.match(wanted):
        raise ValidationFailed(
            "source[language] must be an ISO 639 language code such as zh or en",
            code="invalid_language",
            field="source[language]",
        )
    base, _, region = wanted.partition("-")
    if len(region) == 2:
        region = region.upper()
    return f"{base}-{region}" if region else base
