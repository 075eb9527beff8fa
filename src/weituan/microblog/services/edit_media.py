"""The images an edit gives a post: which it keeps, takes off and puts on, in what order, with their alt
texts and focal points. Everything asked is checked before anything is written (`images_edit_plan`),
then written in one go inside the edit's transaction (`images_edit_apply`)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from weituan.core.errors import ValidationFailed
from weituan.core.ids import MAX_ID
from weituan.microblog.models import MediaAttachment, Post, PostKind
from weituan.microblog.services.media import description_check, focus_check
from weituan.microblog.services.post_content import MAX_MEDIA_PER_POST

_UNUSABLE = "Some media ids are unknown, not yours, or attached to another post"


@dataclass(frozen=True)
class MediaAttributes:
    """What an edit changes of one image the post is to carry: its description (alt text) and its
    focal point (x, y, each -1 to 1); None leaves either as it is."""

    media_id: int
    description: str | None = None
    focus: tuple[float, float] | None = None


def media_versioned(items: Sequence[MediaAttachment]) -> list[dict[str, Any]]:
    """Images as a kept version of a post holds them (`PostEdit.media`): in order, with their alt text."""
    return [{"id": item.id, "description": item.description} for item in items]


def _shown(item: MediaAttachment) -> tuple[str, float | None, float | None]:
    return (item.description, item.focus_x, item.focus_y)


@dataclass
class ImagesEdit:
    """An edit's images, checked and not yet written: what the post carries now (`before`, as a version
    holds them) and what it is to carry (`after`, in order, with the asked descriptions and focal
    points set on them). `changed` says whether anything a reader sees of them differs."""

    post: Post
    before: list[dict[str, Any]]
    after: list[MediaAttachment]
    dropped: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    changed: bool = False


def images_edit_plan(
    *,
    post: Post,
    editor_id: int,
    media_ids: Sequence[int] | None,
    attributes: Sequence[MediaAttributes] = (),
) -> ImagesEdit:
    """Check what an edit asks of the images of `post` (locked by the caller), writing nothing.

    `media_ids` is the images the post is to carry, in order (None keeps the ones it has; repeats count
    once). Refused (422): more than `MAX_MEDIA_PER_POST` (`too_many_media`); images on a quote, which
    carries none (`invalid_media`); an id that is not an upload of the editor's free to go on the post
    (unknown, someone else's, on another post, or taken off another post) (`invalid_media`); attributes
    of an image the post is not to carry (`invalid_media`), a description too long or a focal point
    out of range."""
    current = list(MediaAttachment.objects.filter(post_id=post.id).order_by("position", "id"))
    by_id = {item.id: item for item in current}
    wanted = (
        list(by_id) if media_ids is None else list(dict.fromkeys(int(media_id) for media_id in media_ids))
    )
    if any(not 0 < media_id <= MAX_ID for media_id in wanted):
        raise ValidationFailed(_UNUSABLE, code="invalid_media")
    if wanted and post.kind == PostKind.REPOST:
        raise ValidationFailed("A quote cannot carry media", code="invalid_media")
    if len(wanted) > MAX_MEDIA_PER_POST:
        raise ValidationFailed(f"A post can carry at most {MAX_MEDIA_PER_POST} images", code="too_many_media")
    added = [media_id for media_id in wanted if media_id not in by_id]
    if added:
        free = MediaAttachment.objects.filter(id__in=added, owner_id=editor_id, post__isnull=True).filter(
            Q(dropped_from__isnull=True) | Q(dropped_from_id=post.id)
        )
        by_id.update((item.id, item) for item in free)
        if any(media_id not in by_id for media_id in added):
            raise ValidationFailed(_UNUSABLE, code="invalid_media")
    plan = ImagesEdit(
        post=post,
        before=media_versioned(current),
        after=[by_id[media_id] for media_id in wanted],
        dropped=[item.id for item in current if item.id not in set(wanted)],
        added=added,
    )
    shown_before = {item.id: _shown(item) for item in plan.after}
    for asked in attributes:
        item = next((item for item in plan.after if item.id == asked.media_id), None)
        if item is None:
            raise ValidationFailed(
                "media_attributes names an image the post is not to carry", code="invalid_media"
            )
        if asked.description is not None:
            item.description = description_check(asked.description)
        if asked.focus is not None:
            item.focus_x, item.focus_y = focus_check(asked.focus)
    plan.changed = [item.id for item in current] != wanted or any(
        _shown(item) != shown_before[item.id] for item in plan.after
    )
    return plan


def images_edit_apply(plan: ImagesEdit) -> None:
    """Write a checked edit of the images (inside the edit's transaction): the ones taken off are
    detached and remember the post; the ones put on are claimed by a conditional UPDATE, so an upload
    another post took meanwhile refuses the whole edit; all are put in order with their attributes."""
    post = plan.post
    if plan.dropped:
        MediaAttachment.objects.filter(id__in=plan.dropped, post_id=post.id).update(
            post=None, dropped_from=post
        )
    if plan.added:
        claimed = (
            MediaAttachment.objects.filter(id__in=plan.added, post__isnull=True)
            .filter(Q(dropped_from__isnull=True) | Q(dropped_from_id=post.id))
            .update(post=post, dropped_from=None)
        )
        if claimed != len(plan.added):
            raise ValidationFailed(_UNUSABLE, code="invalid_media")
    for index, item in enumerate(plan.after):
        item.post, item.dropped_from, item.position = post, None, index
    if plan.after:  # one statement for all of them
        MediaAttachment.objects.bulk_update(plan.after, ["position", "description", "focus_x", "focus_y"])
