"""Uploaded pictures for posts: validated and resized, stored, and attached when a post is written."""

from typing import Any

from django.conf import settings
from django.db import transaction

from weituan.core.errors import NotFound, ValidationFailed
from weituan.core.ids import next_id
from weituan.core.images import image_process
from weituan.microblog.models import MediaAttachment

MAX_SIDE = 2048  # longest side kept, in pixels; larger pictures are scaled down
MAX_DESCRIPTION = 1500


def description_check(description: str) -> str:
    """`description` if it is short enough to be an image's alt text (else 422 `description_too_long`)."""
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(
            f"The description is longer than {MAX_DESCRIPTION} characters", code="description_too_long"
        )
    return description


def focus_check(focus: tuple[float, float]) -> tuple[float, float]:
    """`focus` if it is a focal point, each coordinate from -1 to 1 (else 422 `invalid_focus`)."""
    if not all(-1.0 <= value <= 1.0 for value in focus):
        raise ValidationFailed("A focal point's coordinates go from -1 to 1", code="invalid_focus")
    return focus


def media_upload(
    *, owner: Any, upload: Any, description: str = "", focus: tuple[float, float] | None = None
) -> MediaAttachment:
    """Store an uploaded image for `owner`. Refuses ("invalid_image", "image_too_large") anything that is
    not a readable picture within the size limits; nothing is stored then."""
    description_check(description)
    focus_x, focus_y = focus_check(focus) if focus is not None else (None, None)
    processed = image_process(upload=upload, max_bytes=settings.MEDIA_MAX_BYTES, max_side=MAX_SIDE)
    media = MediaAttachment(
        id=next_id(),
        owner=owner,
        width=processed.width,
        height=processed.height,
        description=description,
        focus_x=focus_x,
        focus_y=focus_y,
    )
    media.file.save(f"{media.id}.{processed.extension}", processed.content, save=False)
    media.thumbnail.save(f"{media.id}_small.{processed.extension}", processed.thumbnail, save=False)
    with transaction.atomic():
        media.save(force_insert=True)
    return media


def media_update(
    *, owner: Any, media_id: int, description: str | None, focus: tuple[float, float] | None = None
) -> MediaAttachment:
    """Change the description (alt text) and the focal point of one of the owner's uploads; one given as
    None stays as it is."""
    if description is not None:
        description_check(description)
    if focus is not None:
        focus_check(focus)
    media = MediaAttachment.objects.filter(id=media_id, owner=owner).first()
    if media is None:
        raise NotFound("Record not found")
    if description is not None:
        media.description = description
    if focus is not None:
        media.focus_x, media.focus_y = focus
    media.save(update_fields=["description", "focus_x", "focus_y"])
    return media
