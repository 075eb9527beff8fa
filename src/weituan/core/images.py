"""Uploaded images made safe: checked to be a real picture, de-bombed, turned upright, stripped and resized.

Every image a user uploads (avatars, post pictures) goes through `image_process` before it is stored, so
what we keep is always a freshly encoded file with no EXIF (no GPS position leaks), no oversized canvas and
no trailing payload from the original upload.
"""

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import IO, Any

from django.core.files.base import ContentFile
from PIL import Image, ImageOps, UnidentifiedImageError

from weituan.core.errors import ValidationFailed

# The formats we accept, as Pillow names them, and how each is stored after processing. A GIF keeps its
# first frame only and is stored as PNG, because a re-encoded GIF is larger and loses colour for nothing.
_ACCEPTED = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "PNG", "WEBP": "WEBP"}
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}

# A picture whose canvas is larger than this is refused before its pixels are decoded: a 50 kB PNG can
# declare a 100,000 x 100,000 canvas and take gigabytes to decompress.
MAX_PIXELS = 40_000_000
THUMBNAIL_SIDE = 400
JPEG_QUALITY = 85


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """A cleaned image ready to store: `content` is the full picture, `thumbnail` a small preview."""

    content: ContentFile[bytes]
    thumbnail: ContentFile[bytes]
    width: int
    height: int
    thumbnail_width: int
    thumbnail_height: int
    format: str  # "JPEG", "PNG" or "WEBP": what `content` is encoded as
    content_type: str
    extension: str
    original_format: str  # what the upload was: also "GIF"

    @property
    def size(self) -> int:
        return self.content.size


def image_process(
    *, upload: Any, max_bytes: int, max_side: int, thumbnail_side: int = THUMBNAIL_SIDE
) -> ProcessedImage:
    """Validate and re-encode an uploaded image.

    `upload` is a Django UploadedFile, any binary file object, or bytes. Raises ValidationFailed with code
    "image_too_large" (status 413) when the file or its canvas is too big, and "invalid_image" (422) when
    it is not a readable JPEG, PNG, GIF or WebP picture.
    """
    data = _read_limited(upload, max_bytes)
    picture, original_format = _open_checked(data)
    picture = _upright_and_flat(picture)
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    output_format = _ACCEPTED[original_format]
    content = _encode(picture, output_format)

    preview = picture.copy()
    preview.thumbnail((thumbnail_side, thumbnail_side), Image.Resampling.LANCZOS)
    thumbnail = _encode(preview, output_format)
    extension = _EXTENSIONS[output_format]
    return ProcessedImage(
        content=ContentFile(content, name=f"image.{extension}"),
        thumbnail=ContentFile(thumbnail, name=f"thumbnail.{extension}"),
        width=picture.width,
        height=picture.height,
        thumbnail_width=preview.width,
        thumbnail_height=preview.height,
        format=output_format,
        content_type=_CONTENT_TYPES[output_format],
        extension=extension,
        original_format=original_format,
    )


def _too_large(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="image_too_large", status=413)


def _invalid(message: str = "The file is not a readable JPEG, PNG, GIF or WebP image") -> ValidationFailed:
    return ValidationFailed(message, code="invalid_image", status=422)


def _read_limited(upload: Any, max_bytes: int) -> bytes:
    """The upload's bytes, refusing to read more than `max_bytes` + 1 of them."""
    if upload is None:
        raise _invalid("No image was uploaded")
    if isinstance(upload, bytes | bytearray | memoryview):
        data = bytes(upload)
    else:
        declared = getattr(upload, "size", None)
        if isinstance(declared, int) and declared > max_bytes:
            raise _too_large(f"The image is larger than {max_bytes} bytes")
        stream: IO[bytes] = upload
        if hasattr(stream, "seek"):
            with contextlib.suppress(OSError, ValueError):
                stream.seek(0)
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(f"The image is larger than {max_bytes} bytes")
    if not data:
        raise _invalid("The uploaded file is empty")
    return data


def _open_checked(data: bytes) -> tuple[Image.Image, str]:
    """Open `data` as an image of an accepted format, with its pixels loaded, or raise."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat the warning as the error it is.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data), formats=list(_ACCEPTED))
            original_format = str(probe.format)
            if probe.width * probe.height > MAX_PIXELS:
                raise _too_large(f"The image has more than {MAX_PIXELS} pixels")
            if probe.width < 1 or probe.height < 1:
                raise _invalid()
            # verify() checks the file's structure (CRCs, truncation) but leaves the object unusable,
            # so the picture is opened a second time to decode it.
            probe.verify()
            picture = Image.open(io.BytesIO(data), formats=list(_ACCEPTED))
            picture.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_large("The image is too large to decode") from exc
        except ValidationFailed:
            raise
        except (UnidentifiedImageError, Exception) as exc:
            # Pillow raises assorted errors on corrupt data (OSError, SyntaxError, struct.error, ...):
            # all of them mean "not an image we can read".
            raise _invalid() from exc
    if original_format not in _ACCEPTED:
        raise _invalid()
    return picture, original_format


def _upright_and_flat(picture: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, keep only the first frame, and settle on RGB or RGBA pixels."""
    try:
        upright = ImageOps.exif_transpose(picture)
    except Exception:  # A broken EXIF block should not cost the user the picture.
        upright = picture
    if upright is None:
        upright = picture
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    # A fresh image carries no info dict: EXIF, ICC, comments and PNG text chunks are all left behind.
    flat = upright.convert("RGBA" if has_alpha else "RGB")
    clean = Image.new(flat.mode, flat.size)
    clean.paste(flat)
    return clean


def _encode(picture: Image.Image, output_format: str) -> bytes:
    buffer = io.BytesIO()
    if output_format == "JPEG":
        if picture.mode != "RGB":
            # JPEG has no alpha: put transparent parts on white, as a browser would on our pages.
            background = Image.new("RGB", picture.size, (255, 255, 255))
            background.paste(picture, mask=picture.getchannel("A") if picture.mode == "RGBA" else None)
            picture = background
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    elif output_format == "WEBP":
        picture.save(buffer, "WEBP", quality=JPEG_QUALITY, method=4)
    else:
        picture.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
