"""Mastodon API: the instance description (v1 and v2), with a version string Mastodon clients accept.

Clients such as Mastodon.py read the leading "4.5.0" of `version` to decide which endpoints exist, so it
comes first; Weituan's own version follows in parentheses, the way other compatible servers do it.
"""

from datetime import timedelta
from functools import lru_cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from ninja import Router

from weituan.accounts.queries import user_counts
from weituan.core import images
from weituan.mastodon.serializers_accounts import DEFAULT_HEADER, absolute_url
from weituan.microblog.services.pins import PINS_MAX
from weituan.microblog.stats import statuses_total

router = Router(tags=["mastodon:instance"])
router_v2 = Router(tags=["mastodon:v2"])

MAX_MEDIA_ATTACHMENTS = 4
# Mastodon's Rule entities ({id, text, hint}); Weituan states none, so sign-up shows no list to agree to.
INSTANCE_RULES: list[dict[str, str]] = []
# Mastodon 4.3 introduced API versioning; 7 is what 4.5 reports (quote policies, quotes and revoking them).
MASTODON_API_VERSION = 7
IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"]
DESCRIPTION = (
    "微团 Weituan: a micro-blog where deals spread by reposts, and shops see which share brought each sale."
)
SHORT_DESCRIPTION = "A micro-blog for group-buying deals."


@lru_cache(maxsize=1)
def weituan_version() -> str:
    try:
        return package_version("weituan")
    except PackageNotFoundError:
        return "0.1.0"


def version_string() -> str:
    """E.g. "4.5.0 (compatible; Weituan 0.1.0)"."""
    return f"{settings.MASTODON_VERSION} (compatible; Weituan {weituan_version()})"


def _domain(request: HttpRequest) -> str:
    return urlsplit(settings.SITE_URL).netloc or request.get_host()


def _streaming_url(request: HttpRequest) -> str:
    """This server's own address as a WebSocket URL, as Mastodon names its streaming server: WebSocket
    clients connect to `<it>/api/v1/streaming`, and clients such as Mastodon.py turn it into http(s)
    for the event streams. Mastodon's schema requires one: strict clients refuse an instance without
    it, or with null. The ASGI server streams there; the WSGI server answers 501 there, and clients fall
    back to polling (see `api_streaming`)."""
    base = absolute_url("/", request).rstrip("/")
    return (
        "wss://" + base[len("https://") :]
        if base.startswith("https://")
        else "ws://" + base[len("http://") :]
    )


def _statuses_configuration() -> dict[str, Any]:
    return {
        "max_characters": settings.POST_MAX_WEIGHTED_LENGTH,
        "max_media_attachments": MAX_MEDIA_ATTACHMENTS,
        "characters_reserved_per_url": 23,
    }


def _media_configuration() -> dict[str, Any]:
    return {
        "supported_mime_types": IMAGE_TYPES,
        "description_limit": 1500,
        "image_size_limit": settings.MEDIA_MAX_BYTES,
        "image_matrix_limit": images.MAX_PIXELS,
        "video_size_limit": 0,
        "video_frame_rate_limit": 0,
        "video_matrix_limit": 0,
    }


def _polls_configuration() -> dict[str, Any]:
    # Polls are not offered; the limits say so to clients that check before showing a poll editor.
    return {
        "max_options": 0,
        "max_characters_per_option": 0,
        "min_expiration": 300,
        "max_expiration": 2_629_746,
    }


def _languages() -> list[str]:
    return [code.split("-")[0] for code, _ in settings.LANGUAGES]


@router.get("/instance/rules", auth=None, summary="The server's rules (the instance's `rules`)")
def instance_rules(request: HttpRequest) -> list[dict[str, str]]:
    return INSTANCE_RULES


# Mastodon.py asks for "/api/v1/instance/" with the slash; Mastodon answers both spellings.
@router.get("/instance/", auth=None, include_in_schema=False)
@router.get("/instance", auth=None, summary="Instance description (Mastodon v1)")
def instance_v1(request: HttpRequest) -> dict[str, Any]:
    counts = user_counts()
    return {
        "uri": _domain(request),
        "title": settings.SITE_NAME,
        "short_description": SHORT_DESCRIPTION,
        "description": DESCRIPTION,
        "email": settings.DEFAULT_FROM_EMAIL.rpartition("<")[2].rstrip(">"),
        "version": version_string(),
        "urls": {"streaming_api": _streaming_url(request)},
        # No other servers are known: Weituan does not federate.
        "stats": {"user_count": counts.total, "status_count": statuses_total(), "domain_count": 0},
        "thumbnail": absolute_url(static(DEFAULT_HEADER), request),
        "languages": _languages(),
        "registrations": True,
        "approval_required": False,
        "invites_enabled": True,  # every account has an invite link (/invite/<username>)
        "configuration": {
            "accounts": {"max_featured_tags": 0},
            "statuses": _statuses_configuration(),
            "media_attachments": _media_configuration(),
            "polls": _polls_configuration(),
        },
        "contact_account": None,
        "rules": INSTANCE_RULES,
    }


@router_v2.get("/instance/", auth=None, include_in_schema=False)
@router_v2.get("/instance", auth=None, summary="Instance description (Mastodon v2)")
def instance_v2(request: HttpRequest) -> dict[str, Any]:
    counts = user_counts(active_since=timezone.now() - timedelta(days=30))
    return {
        "domain": _domain(request),
        "title": settings.SITE_NAME,
        "version": version_string(),
        "source_url": absolute_url("/", request),
        "description": DESCRIPTION,
        "usage": {"users": {"active_month": counts.active}},
        "thumbnail": {"url": absolute_url(static(DEFAULT_HEADER), request)},
        "icon": [],
        "languages": _languages(),
        "configuration": {
            "urls": {"streaming": _streaming_url(request)},
            "vapid": {"public_key": str(getattr(settings, "WEBPUSH_VAPID_PUBLIC_KEY", "") or "")},
            "accounts": {"max_featured_tags": 0, "max_pinned_statuses": PINS_MAX},
            "statuses": _statuses_configuration(),
            "media_attachments": _media_configuration(),
            "polls": _polls_configuration(),
            "translation": {"enabled": False},
        },
        "registrations": {
            "enabled": True,
            "approval_required": False,
            "message": None,
            "url": absolute_url(reverse("accounts:signup"), request),
        },
        "api_versions": {"mastodon": MASTODON_API_VERSION},
        "contact": {"email": settings.DEFAULT_FROM_EMAIL.rpartition("<")[2].rstrip(">"), "account": None},
        "rules": INSTANCE_RULES,
    }
