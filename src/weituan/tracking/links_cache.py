"""Resolving a short code to its link, through a process-local cache: links never change once made."""

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache

from weituan.tracking.channels import LinkFacts
from weituan.tracking.models import ShortLink

CODE_PATTERN = re.compile(r"^[A-Za-z0-9]{4,16}$")
LOCAL_TTL = 600.0
_MISSING_TTL = 30.0
_LOCAL_MAX = 100_000


@dataclass(frozen=True)
class ResolvedLink:
    facts: LinkFacts
    target_url: str
    # The ends of click lines prepared per referrer (see services.events.click_line); they live as
    # long as the link stays in the cache, and links never change once made.
    click_rows: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


class LinkEntry:
    """What the process knows about a code until `expires` (on the `time.monotonic` clock)."""

    __slots__ = ("expires", "link")

    def __init__(self, expires: float, link: ResolvedLink | None):
        self.expires = expires
        self.link = link  # None: there is no such link


class _LocalLinks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Read without the lock (a dict read is atomic); written under it.
        self.entries: dict[str, LinkEntry] = {}
        # Request path ("/s/<code>", with or without the slash) -> what the /s/ fast path prepared for
        # its link (see tracking.asgi), which holds its own expiry. Forgotten with the entries.
        self.redirects: dict[str, Any] = {}

    def get(self, code: str) -> tuple[bool, ResolvedLink | None]:
        entry = self.entries.get(code)
        if entry is None or entry.expires < time.monotonic():
            return False, None
        return True, entry.link

    def put(self, code: str, link: ResolvedLink | None) -> LinkEntry:
        ttl = LOCAL_TTL if link is not None else _MISSING_TTL
        entry = LinkEntry(time.monotonic() + ttl, link)
        with self._lock:
            if len(self.entries) >= _LOCAL_MAX:
                self.entries.clear()
            self.entries[code] = entry
        return entry

    def redirect_put(self, path: str, redirect: Any) -> None:
        with self._lock:
            if len(self.redirects) >= _LOCAL_MAX:
                self.redirects.clear()
            self.redirects[path] = redirect

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.redirects.clear()


local_links = _LocalLinks()


def _load(code: str) -> ResolvedLink | None:
    shared_key = f"tracking:link:{code}"
    cached = cache.get(shared_key)
    if cached is not None:
        return _from_tuple(cached) if cached else None
    row = (
        ShortLink.objects.filter(code=code)
        .values_list(
            "id", "channel", "hop_depth", "sharer_id", "post_id", "deal_id", "campaign", "target_url"
        )
        .first()
    )
    cache.set(shared_key, tuple(row) if row else (), 3600 if row else int(_MISSING_TTL))
    return _from_tuple(tuple(row)) if row else None


def _from_tuple(row: tuple) -> ResolvedLink:
    link_id, channel, hop_depth, sharer_id, post_id, deal_id, campaign, target = row
    facts = LinkFacts(
        link_id=link_id,
        channel=channel,
        hop_depth=hop_depth,
        sharer_id=sharer_id,
        post_id=post_id,
        deal_id=deal_id,
        campaign=campaign,
    )
    return ResolvedLink(facts=facts, target_url=target)


def link_resolve(code: str) -> ResolvedLink | None:
    """The link behind `code`, or None when there is no such link (or the code is malformed)."""
    if not CODE_PATTERN.match(code):
        return None
    hit, link = local_links.get(code)
    if hit:
        return link
    link = _load(code)
    local_links.put(code, link)
    return link


async def link_resolve_async(code: str) -> ResolvedLink | None:
    """As `link_resolve`, for async views: a local hit never leaves the event loop."""
    if not CODE_PATTERN.match(code):
        return None
    hit, link = local_links.get(code)
    if hit:
        return link
    link = await sync_to_async(_load)(code)
    local_links.put(code, link)
    return link
