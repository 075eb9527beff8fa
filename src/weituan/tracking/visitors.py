"""The first-party visitor cookie, the namespace of ids sent by outside sites, and where a short link sends."""

import os
from collections import deque

from weituan.tracking.links_cache import ResolvedLink

VISITOR_COOKIE = "wt_vid"
VISITOR_MAX_AGE = 2 * 365 * 24 * 3600
_IDS_PER_READ = 128

# Fresh ids, read from the kernel's random source a block at a time: a first click costs a pop, not a
# system call. `deque.pop` and `deque.extend` are atomic, so threads never get the same id.
_fresh_ids: deque[str] = deque()
os.register_at_fork(after_in_child=_fresh_ids.clear)  # a forked child must not hand out its parent's ids


def visitor_id_new() -> str:
    """A new visitor's id: 32 hex digits (128 random bits, as unguessable as `uuid4().hex`)."""
    try:
        return _fresh_ids.pop()
    except IndexError:
        block = os.urandom(16 * _IDS_PER_READ).hex()
        _fresh_ids.extend(block[start : start + 32] for start in range(32, len(block), 32))
        return block[:32]


def visitor_id_valid(value: str) -> bool:
    if not 8 <= len(value) <= 64:
        return False
    return value.isalnum() or value.replace("-", "").replace("_", "").isalnum()


def outside_id(api_key_id: int, sent: str) -> str:
    """An id a site sent with its API key (visitor, distinct or alias id), in that key's own namespace.

    Weituan's own ids never start with `k<digits>:` (a cookie id holds no colon; a user is `u:<id>`),
    so no outside site can name a Weituan visitor or user, nor another site's ids. A site's signed-in
    users are `k<key id>:u:<user id>` in the same namespace (see 0002_derived_views.sql).
    """
    return f"k{api_key_id}:{sent}"


def redirect_target(link: ResolvedLink, code: str) -> str:
    """The target, carrying our share token `wt_s` so the landing page view is credited to the share.

    Outbound links go to the exact URL: a third-party page gets no parameter of ours.
    """
    if link.facts.channel == "outbound":
        return link.target_url
    base, hash_mark, fragment = link.target_url.partition("#")
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}wt_s={code}{hash_mark}{fragment}"
