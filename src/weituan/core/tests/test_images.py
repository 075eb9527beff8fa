"""Uploaded images: accepted formats, resizing, orientation, metadata stripping and refusals."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from weituan.core import images
from weituan.core.errors import ValidationFailed
from weituan.core.images import image_process


def _picture(fmt: str, size: tuple[int, int] = (64, 32), mode: str = "RGB", **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 40) if mode == "RGB" else None).save(buffer, fmt, **save)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "stored_as", "content_type"),
    [("JPEG", "JPEG", "image/jpeg"), ("PNG", "PNG", "image/png"), ("WEBP", "WEBP", "image/webp")],
)
def test_each_format_is_kept_and_resized_to_fit(fmt: str, stored_as: str, content_type: str) -> None:
    upload = SimpleUploadedFile("p.bin", _picture(fmt, (1000, 500)))

    result = image_process(upload=upload, max_bytes=1_000_000, max_side=200, thumbnail_side=50)

    assert (result.width, result.height) == (200, 100)
    assert (result.thumbnail_width, result.thumbnail_height) == (50, 25)
    assert (result.format, result.content_type, result.original_format) == (stored_as, content_type, fmt)
    with Image.open(io.BytesIO(result.content.read())) as stored:
        assert (stored.format, stored.size) == (stored_as, (200, 100))
    with Image.open(io.BytesIO(result.thumbnail.read())) as thumb:
        assert thumb.size == (50, 25)
    assert result.content.name == f"image.{result.extension}"


def test_gif_keeps_first_frame_as_png() -> None:
    frames = [Image.new("P", (20, 10), color) for color in (1, 2, 3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])

    result = image_process(upload=buffer.getvalue(), max_bytes=100_000, max_side=100)

    assert (result.format, result.original_format, result.width, result.height) == ("PNG", "GIF", 20, 10)


def test_small_image_is_not_enlarged() -> None:
    result = image_process(upload=_picture("PNG", (30, 40)), max_bytes=100_000, max_side=400)
    assert (result.width, result.height) == (30, 40)


def test_exif_orientation_is_applied_and_metadata_removed() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "SecretCam"  # camera make: must not survive
    raw = _picture("JPEG", (60, 20), exif=exif.tobytes())

    result = image_process(upload=raw, max_bytes=100_000, max_side=400)

    assert (result.width, result.height) == (20, 60)
    stored_bytes = result.content.read()
    with Image.open(io.BytesIO(stored_bytes)) as stored:
        assert dict(stored.getexif()) == {}
        assert "exif" not in stored.info
    assert b"SecretCam" not in stored_bytes


def test_png_text_chunks_are_stripped() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "gps 31.2,121.4")
    raw = _picture("PNG", (10, 10), pnginfo=info)
    assert b"gps 31.2" in raw

    result = image_process(upload=raw, max_bytes=100_000, max_side=400)

    assert b"gps 31.2" not in result.content.read()


def test_transparency_survives_in_png() -> None:
    result = image_process(upload=_picture("PNG", (8, 8), mode="RGBA"), max_bytes=100_000, max_side=400)
    with Image.open(io.BytesIO(result.content.read())) as stored:
        assert stored.mode == "RGBA"
        assert stored.getpixel((0, 0)) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "payload",
    [
        b"this is not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature and nothing valid after it
        _picture("PNG", (50, 50))[:60],  # truncated
        _picture("BMP", (5, 5)),  # a real image, but not a format we accept
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    ],
)
def test_malformed_or_unsupported_data_is_invalid(payload: bytes) -> None:
    with pytest.raises(ValidationFailed) as caught:
        image_process(upload=SimpleUploadedFile("x.png", payload), max_bytes=100_000, max_side=400)
    assert (caught.value.code, caught.value.status) == ("invalid_image", 422)


def test_empty_and_missing_uploads_are_invalid() -> None:
    for upload in (b"", None):
        with pytest.raises(ValidationFailed) as caught:
            image_process(upload=upload, max_bytes=100, max_side=10)
        assert caught.value.code == "invalid_image"


def test_oversized_bytes_are_refused_before_decoding() -> None:
    raw = _picture("PNG", (200, 200))
    with pytest.raises(ValidationFailed) as caught:
        image_process(upload=SimpleUploadedFile("big.png", raw), max_bytes=len(raw) - 1, max_side=400)
    assert (caught.value.code, caught.value.status) == ("image_too_large", 413)

    # A plain stream without a declared size is cut off after max_bytes + 1 bytes.
    with pytest.raises(ValidationFailed) as caught:
        image_process(upload=io.BytesIO(raw), max_bytes=100, max_side=400)
    assert caught.value.code == "image_too_large"


def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny, highly compressible file that declares a canvas above the pixel budget.
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    bomb = _picture("PNG", (200, 200), mode="L")
    assert len(bomb) < 1_000

    with pytest.raises(ValidationFailed) as caught:
        image_process(upload=bomb, max_bytes=100_000, max_side=400)
    assert (caught.value.code, caught.value.status) == ("image_too_large", 413)


def test_pillow_bomb_limit_is_also_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    with pytest.raises(ValidationFailed) as caught:
        image_process(upload=_picture("PNG", (40, 40), mode="L"), max_bytes=100_000, max_side=400)
    assert caught.value.code == "image_too_large"
