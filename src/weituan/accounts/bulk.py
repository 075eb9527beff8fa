"""Loading many users at once, for the simulator and benchmarks (one password hash shared by all)."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.hashers import make_password
from django.utils import timezone

from weituan.accounts.models import User


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    display_name: str = ""
    is_merchant: bool = False


def users_bulk_create(*, users: Sequence[NewUser], password: str, batch_size: int = 5_000) -> list[int]:
    """Insert `users` in batches and return their ids in the same order."""
    password_hash = make_password(password)
    now = timezone.now()
    rows = [
        User(
            username=user.username,
            email=f"{user.username}@example.test",
            display_name=user.display_name,
            password=password_hash,
            is_merchant=user.is_merchant,
            verified_at=now if user.is_merchant else None,
            date_joined=now,
        )
        for user in users
    ]
    User.objects.bulk_create(rows, batch_size=batch_size)
    by_name = dict(
        User.objects.filter(username__in=[u.username for u in users]).values_list("username", "id")
    )
    return [by_name[user.username] for user in users]
