"""Helpers for tests and the simulator: making users without going through the sign-up flow, and
moving the clock."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.utils import timezone


def make_user(
    username: str,
    *,
    display_name: str = "",
    merchant: bool = False,
    operator: bool = False,
    password: str = "correct horse battery",
    password_hash: str | None = None,
    **extra: Any,
) -> Any:
    """A user with a verified merchant badge or operator rights as asked; `password_hash` skips re-hashing."""
    from weituan.accounts.models import User

    user = User.objects.create_user(
        username=username,
        email=f"{username}@example.test",
        password=None if password_hash else password,
        display_name=display_name,
        is_merchant=merchant,
        is_operator=operator,
        **extra,
    )
    if password_hash:
        user.password = password_hash
        user.save(update_fields=["password"])
    if merchant:
        user.verified_at = timezone.now()
        user.save(update_fields=["verified_at"])
    return user


class MovedClock:
    """Django's clock (`timezone.now`) run ahead by a chosen amount, so a test reaches a later time
    without waiting for it. Install with `MovedClock.install(monkeypatch)`; it holds for the whole
    process (a live server's threads too) until the monkeypatch is undone."""

    def __init__(self) -> None:
        self.ahead = timedelta()
        self._real = timezone.now

    @classmethod
    def install(cls, monkeypatch: Any) -> "MovedClock":
        clock = cls()
        monkeypatch.setattr(timezone, "now", clock.now)
        return clock

    def now(self) -> datetime:
        return self._real() + self.ahead

    def forward(self, seconds: float) -> None:
        self.ahead += timedelta(seconds=seconds)


class CountingWSGI:
    """Django's WSGI handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.django = WSGIHandler()
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.calls += 1
        return self.django(environ, start_response)
