"""The QR image of a voucher's code (PNG or SVG), shown on its holder's pages and served by the API."""

import io

import segno

CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def voucher_qr_image(*, code: str, kind: str) -> tuple[bytes, str]:
    """The QR code of `code` as `kind` ("png" or "svg"), and its content type."""
    qr = segno.make(code, error="m")
    buffer = io.BytesIO()
    if kind == "png":
        qr.save(buffer, kind="png", scale=6, border=2)
    else:
        qr.save(buffer, kind="svg", scale=6, border=2, xmldecl=False)
    return buffer.getvalue(), CONTENT_TYPES[kind]
