"""A voucher's QR code through the API, with the caller's bearer token: its holder and the deal's merchant
get the PNG or SVG the voucher's JSON links to; anyone else is told there is no such voucher."""

import io
from typing import Any

import pytest
import segno
from django.conf import settings
from PIL import Image

from weituan.deals.tests.test_vouchers_and_referrals import paid_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def voucher_code(shopper: Any, make_live_deal: Any, fund: Any) -> str:
    deal = make_live_deal(tipping_point=1)
    return str(paid_order(deal, shopper, fund).vouchers.get().code)


def _path(url: str) -> str:
    assert url.startswith(settings.SITE_URL)
    return url.removeprefix(settings.SITE_URL)


def test_the_holder_gets_the_png_and_svg_the_voucher_links_to(
    api_as: Any, shopper: Any, voucher_code: str
) -> None:
    api = api_as(shopper)
    (listed,) = api.get("/api/v1/vouchers").json()
    assert listed["code"] == voucher_code
    assert _path(listed["qr_png"]) == f"/api/v1/vouchers/{voucher_code}/qr.png"
    assert _path(listed["qr_svg"]) == f"/api/v1/vouchers/{voucher_code}/qr.svg"

    png = api.get(_path(listed["qr_png"]))
    assert (png.status_code, png["Content-Type"], png["Cache-Control"]) == (
        200,
        "image/png",
        "private, no-store",
    )
    image = Image.open(io.BytesIO(png.content))
    image.verify()  # a whole, valid PNG
    assert image.format == "PNG"
    # The image is the QR code of the voucher's code (segno's own rendering of it, pixel for pixel).
    expected = io.BytesIO()
    segno.make(voucher_code, error="m").save(expected, kind="png", scale=6, border=2)
    assert png.content == expected.getvalue()

    svg = api.get(_path(listed["qr_svg"]))
    assert (svg.status_code, svg["Content-Type"]) == (200, "image/svg+xml")
    text = svg.content.decode()
    assert text.startswith("<svg") and text.rstrip().endswith("</svg>")
    assert 'xmlns="http://www.w3.org/2000/svg"' in text


def test_the_deals_merchant_gets_it_and_a_stranger_does_not(
    api_as: Any, merchant: Any, outsider: Any, voucher_code: str
) -> None:
    png = api_as(merchant).get(f"/api/v1/vouchers/{voucher_code}/qr.png")
    assert (png.status_code, png.content[:8]) == (200, b"\x89PNG\r\n\x1a\n")
    for kind in ("png", "svg"):
        refused = api_as(outsider).get(f"/api/v1/vouchers/{voucher_code}/qr.{kind}")
        assert refused.status_code == 404
        assert refused.json() == {"error": "No such voucher", "code": "not_found"}
    unknown = api_as(merchant).get("/api/v1/vouchers/NOSUCHCODE/qr.svg")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


def test_a_token_is_needed_and_the_paths_are_in_the_openapi_document(
    client: Any, api_as: Any, shopper: Any, voucher_code: str
) -> None:
    anonymous = client.get(f"/api/v1/vouchers/{voucher_code}/qr.png")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    spec = api_as(shopper).get("/api/v1/openapi.json").json()
    for kind, content_type in (("png", "image/png"), ("svg", "image/svg+xml")):
        operation = spec["paths"][f"/api/v1/vouchers/{{code}}/qr.{kind}"]["get"]
        assert operation["responses"]["200"]["content"] == {
            content_type: {"schema": {"type": "string", "format": "binary"}}
        }
        assert operation["responses"]["404"]["content"]["application/json"]
        assert operation["security"]
