"""Uploaded pictures found by their URL: the small version and the size of an upload another app shows."""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings

from weituan.microblog.models import MediaAttachment


@dataclass(frozen=True)
class UploadedPicture:
    """An upload as `media_upload` stored it: its full picture's URL, its small version's URL (the full
    one when it has none) and the full picture's size in pixels. None of these change once stored."""

    url: str
    thumbnail_url: str
    width: int
    height: int


def _upload_id(url: str) -> int | None:
    """The id of the upload a URL of this site's media names (`media_upload` stores `<id>.<ext>`)."""
    if not url.startswith(settings.MEDIA_URL):
        return None
    stem = PurePosixPath(url).stem
    return int(stem) if stem.isdigit() else None


def uploaded_pictures(urls: Iterable[str]) -> dict[str, UploadedPicture]:
    """The uploads among `urls`, by URL, read in one query (none for URLs that name no upload, such as
    the site's static pictures). A URL whose file is not the upload its name points to is left out."""
    wanted = {url: upload_id for url in urls if (upload_id := _upload_id(url)) is not None}
    if not wanted:
        return {}
    found: dict[str, UploadedPicture] = {}
    for media in MediaAttachment.objects.filter(id__in=set(wanted.values())).only(
        "id", "file", "thumbnail", "width", "height"
    ):
        url = media.file.url if media.file else ""
        if wanted.get(url) == media.id:
            found[url] = UploadedPicture(
                url=url,
                thumbnail_url=media.thumbnail.url if media.thumbnail else url,
                width=media.width,
                height=media.height,
            )
    return found
