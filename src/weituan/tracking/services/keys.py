"""API keys with which sites outside Weituan send their events."""

import hashlib
import secrets
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone

from weituan.core.errors import NotFound, ValidationFailed
from weituan.tracking.models import ApiKey

KEY_PREFIX = "wtk_"


@dataclass(frozen=True)
class IssuedKey:
    id: int
    name: str
    key: str  # shown once; only its hash is stored


def api_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_issue(*, name: str, owner_id: int | None = None) -> IssuedKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("An API key needs a name of 1–100 characters", code="bad_name")
    raw = KEY_PREFIX + secrets.token_urlsafe(24)
    row = ApiKey.objects.create(name=name, prefix=raw[:12], key_hash=api_key_hash(raw), owner_id=owner_id)
    return IssuedKey(id=row.pk, name=row.name, key=raw)


def api_key_revoke(*, key_id: int, owner_id: int | None) -> None:
    updated = ApiKey.objects.filter(pk=key_id, owner_id=owner_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        raise NotFound("No such API key")
    cache.delete_many([f"tracking:apikey:{row.key_hash}" for row in ApiKey.objects.filter(pk=key_id)])
