"""Marks browser users as seen (at most once per few minutes each; see `user_touch_last_seen`)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from weituan.accounts.services import user_touch_last_seen


class LastSeenMiddleware:
    """Place after AuthenticationMiddleware. The write happens after the response is built."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            user_touch_last_seen(user_id=user.pk)
        return response
