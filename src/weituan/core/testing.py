"""Helpers for tests and the simulator: making users without going through the sign-up flow."""

from typing import Any

from django.utils import timezone


def make_user(
    username: str,
    *,
    display_name: str = "",
    merchant: bool = False,
    operator: bool = False,
    password: str = "correct horse battery",
    **extra: Any,
) -> Any:
    from weituan.accounts.models import User

    user = User.objects.create_user(
        username=username,
        email=f"{username}@example.test",
        password=password,
        display_name=display_name,
        is_merchant=merchant,
        is_operator=operator,
        **extra,
    )
    if merchant:
        user.verified_at = timezone.now()
        user.save(update_fields=["verified_at"])
    return user
