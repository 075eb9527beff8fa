"""Post impressions: a `post_impression` event when a post is shown to someone in a timeline.

Seeing a post is the Sense stage of SICAS. A timeline is read again and again (a refresh, the next page
overlapping the last, a second client), and each read would count the same sight once more; so, as a
click counts once per link, visitor and hour, an impression counts once per viewer, post and hour. The
viewer is the signed-in user, else the first-party visitor; a read by nobody known (no token, no
cookie) is not an impression of anyone and records nothing.

The hour's sights are kept in memory in each process, so a viewer served by two processes in one hour
may be counted once by each (count distinct viewers where it matters). Past `MAX_SIGHTS` pairs in an
hour the memory starts afresh. The rows go through the write buffer, like views and clicks: nothing
is written on the request's path but a list append.
"""

import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache

from weituan.tracking import rows as event_rows
from weituan.tracking.buffer import write_buffer
from weituan.tracking.rows import EventName, event_row

HOUR = 3600
MAX_SIGHTS = 300_000  # about 15 MiB of the 64-bit hashes kept


class Sights:
    """The (viewer, post) pairs seen this hour, each kept as its 64-bit hash (two pairs sharing one, a
    chance of about one in 10^8 in a full hour, would count as one sight)."""

    def __init__(self, max_sights: int = MAX_SIGHTS) -> None:
        self.max_sights = max_sights
        self._hour = -1
        self._seen: set[int] = set()
        self._lock = threading.Lock()

    def first_sights(self, viewer: int | str, post_ids: Iterable[int], now: float) -> list[int]:
        """The posts of `post_ids` that `viewer` had not been shown yet this hour, now marked seen."""
        hour = int(now // HOUR)
        keys = {post_id: hash((viewer, post_id)) for post_id in post_ids}
        with self._lock:
            if hour != self._hour or len(self._seen) >= self.max_sights:
                self._hour, self._seen = hour, set()
            seen = self._seen
            fresh = [post_id for post_id, key in keys.items() if key not in seen]
            seen.update([keys[post_id] for post_id in fresh])
        return fresh


_sights = Sights()


@cache
def _props(timeline: str) -> str:
    return json.dumps({"timeline": timeline}, separators=(",", ":"))


def impressions_record(
    *, post_ids: Iterable[int], user_id: int | None, visitor_id: str = "", timeline: str
) -> int:
    """Record that the viewer was shown `post_ids` in `timeline` (home, public, tag, account, topic...);
    returns the number of impressions recorded (those not already counted this hour)."""
    viewer: int | str = user_id or visitor_id
    if not viewer:
        return 0
    now = time.time()
    fresh = _sights.first_sights(viewer, post_ids, now)
    if not fresh:
        return 0
    base = event_row(
        EventName.POST_IMPRESSION,
        datetime.fromtimestamp(now, UTC),
        visitor_id or f"u:{user_id}",
        user_id=user_id or 0,
        origin="server",
        props=_props(timeline),
    )
    next_id = event_rows.event_id_next  # looked up now: a forked child has its own
    write_buffer().add_many([{**base, "post_id": post_id, "event_id": next_id()} for post_id in fresh])
    return len(fresh)


def impressions_forget() -> None:
    """Forget this hour's sights (tests)."""
    global _sights
    _sights = Sights(_sights.max_sights)
