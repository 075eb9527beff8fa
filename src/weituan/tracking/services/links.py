"""Creating short links: one per share (post, repost hop, push, email) and per outbound link in a post."""

import hashlib
import secrets
import string
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from weituan.core.errors import ValidationFailed
from weituan.tracking.models import LinkChannel, ShortLink

CODE_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 8  # 62^8 ≈ 2.2e14 codes: unguessable by enumeration at any plausible request rate
MAX_URL_LENGTH = 2000


def short_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def target_url_check(url: str) -> str:
    """Only absolute http(s) URLs with a host may be a target, so /s/ can never be an open redirect."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise ValidationFailed(
            "The link target must be an http(s) URL of at most 2000 characters", code="bad_target"
        )
    if any(ch in url for ch in "\r\n\t\x00") or "\\" in url:
        raise ValidationFailed("The link target contains characters a URL cannot hold", code="bad_target")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationFailed("The link target is not a URL", code="bad_target") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("Only http and https links can be shortened", code="bad_target")
    return url


def short_link_create(
    *,
    dedup_key: str,
    target_url: str,
    channel: str,
    hop_depth: int = 0,
    sharer_id: int | None = None,
    post_id: int | None = None,
    deal_id: int | None = None,
    campaign: str = "",
) -> ShortLink:
    """The link for `dedup_key`, created once; a concurrent or repeated call returns the same row."""
    target = target_url_check(target_url)
    if channel not in LinkChannel.values:
        raise ValidationFailed(f"Unknown link channel {channel!r}", code="bad_channel")
    if hop_depth < 0 or hop_depth > 10_000:
        raise ValidationFailed("hop_depth must be between 0 and 10000", code="bad_hop_depth")
    existing = ShortLink.objects.filter(dedup_key=dedup_key).first()
    if existing is not None:
        return existing
    for _ in range(5):
        try:
            with transaction.atomic():
                return ShortLink.objects.create(
                    code=short_code_new(),
                    dedup_key=dedup_key,
                    target_url=target,
                    channel=channel,
                    hop_depth=hop_depth,
                    sharer_id=sharer_id,
                    post_id=post_id,
                    deal_id=deal_id,
                    campaign=campaign[:100],
                )
        except IntegrityError:
            # Either another request made this share's link first, or (rarely) the code was taken.
            existing = ShortLink.objects.filter(dedup_key=dedup_key).first()
            if existing is not None:
                return existing
    raise RuntimeError("could not allocate a short link code")


def share_dedup_key(*, sharer_id: int, post_id: int | None, channel: str, campaign: str = "") -> str:
    post = "-" if post_id is None else post_id
    return f"share:{sharer_id}:{post}:{channel}:{hashlib.sha256(campaign.encode()).hexdigest()[:12]}"


def outbound_dedup_key(*, post_id: int, url: str) -> str:
    return f"out:{post_id}:{hashlib.sha256(url.encode()).hexdigest()[:32]}"
