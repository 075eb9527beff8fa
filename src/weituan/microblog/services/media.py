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


def media_upload(*, owner: Any, upload: Any, description: str = "") -> MediaAttachment:
    """Store an uploaded image for `owner`. Refuses ("invalid_image", "image_too_large") anything that is
    not a readable picture within the size limits; nothing is stored then."""
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(
            f"The description is longer than {MAX_DESCRIPTION} characters", code="description_too_long"
        )
    processed = image_process(upload=upload, max_bytes=settings.MEDIA_MAX_BYTES, max_side=MAX_SIDE)
    media = MediaAttachment(
        id=next_id(),
        owner=owner,
        width=processed.width,
        height=processed.height,
        description=description,
    )
    media.file.save(f"{media.id}.{processed.extension}", processed.content, save=False)
    media.thumbnail.save(f"{media.id}_small.{processed.extension}", processed.thumbnail, save=False)
    with transaction.atomic():
        media.save(force_insert=True)
    return media


def media_update(*, owner: Any, media_id: int, description: str) -> MediaAttachment:
    """Change the description (alt text) of one of the owner's uploads."""
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(
            f"The description is longer than {MAX_DESCRIPTION} characters", code="description_too_long"
        )
    media = MediaAttachment.objects.filter(id=media_id, owner=owner).first()
    if media is None:
        raise NotFound("Record not found")
    media.description = description
    media.save(update_fields=["description"])
    return media
