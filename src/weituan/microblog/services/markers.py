"""Reading-position markers: where a user stopped reading their home timeline (Mastodon's `home` marker).

The notifications marker is not kept here: it is what is marked read (`notifications_mark_read`).
"""

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from weituan.core.errors import ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.microblog.models import HomeReadMarker


def home_marker_set(*, user_id: int, last_read_id: int) -> None:
    """Move the user's home marker to `last_read_id`, counting one more version. A conditional UPDATE
    moves it; the first one is created, and a request that meets another creating it moves theirs."""
    if not 0 <= last_read_id <= MAX_ID:
        raise ValidationFailed("last_read_id must be a status id", code="invalid_id")

    def move() -> int:
        return HomeReadMarker.objects.filter(user_id=user_id).update(
            last_read_id=last_read_id, version=F("version") + 1, updated_at=timezone.now()
        )

    if move():
        return
    try:
        with transaction.atomic():
            HomeReadMarker.objects.create(
                user_id=user_id, last_read_id=last_read_id, updated_at=timezone.now()
            )
    except IntegrityError:
        move()
