"""Marks signed-in callers as seen, at most once per few minutes each (see `user_touch_last_seen`).

Most requests cost nothing here: the process remembers whom it marked lately, so only the first
request of a user in each window reaches the cache gate and, past it, the conditional UPDATE. A user
nobody looked at during the request (an anonymous page, a static file) is not loaded to find out.
"""

import time
from collections.abc import Callable
from inspect import iscoroutinefunction, markcoroutinefunction
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils.functional import LazyObject, empty

from weituan.accounts.services import LAST_SEEN_RESOLUTION, last_seen_gate_key, user_touch_last_seen

# Past this many remembered users the memo starts over; forgetting costs one cache round trip each.
MEMO_LIMIT = 50_000
_marked_until: dict[str, float] = {}


def seen_user_id(request: HttpRequest) -> int | None:
    """The signed-in caller's id if the request already knows it (session or token), else None."""
    viewer_id = getattr(request, "seen_user_id", None)
    if viewer_id is not None:
        return int(viewer_id)
    user: Any = request.__dict__.get("user")
    if isinstance(user, LazyObject):
        wrapped = user._wrapped  # type: ignore[attr-defined]
        if wrapped is empty:
            return None  # never looked at: loading it now would add queries to this request
        user = wrapped
    if user is not None and user.is_authenticated:
        return int(user.pk)
    return None


def last_seen_due(user_id: int) -> bool:
    """Whether this process has not marked `user_id` within the window (and now counts it as marked)."""
    key = last_seen_gate_key(user_id)
    now = time.monotonic()
    if _marked_until.get(key, 0.0) > now:
        return False
    if len(_marked_until) >= MEMO_LIMIT:
        _marked_until.clear()
    _marked_until[key] = now + LAST_SEEN_RESOLUTION.total_seconds()
    return True


class LastSeenMiddleware:
    """Place after AuthenticationMiddleware. The mark is made once the response is built.

    Runs on the event loop under ASGI (a sync-only member would move every request to a thread and
    back); only the rare write goes to a thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._async_call(request)
        response = self.get_response(request)
        user_id = seen_user_id(request)
        if user_id is not None and last_seen_due(user_id):
            user_touch_last_seen(user_id=user_id)
        return response

    async def _async_call(self, request: HttpRequest) -> Any:
        response = await self.get_response(request)  # type: ignore[misc]
        user_id = seen_user_id(request)
        if user_id is not None and last_seen_due(user_id):
            await sync_to_async(user_touch_last_seen)(user_id=user_id)
        return response
